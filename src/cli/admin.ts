// admp admin token create | list | revoke: operator credentials for the admin API
// and the console (/console). Created here, on the server, because the first token
// cannot be asked for over an API that needs one.
import type { Command } from 'commander';
import { withAdmin } from '../app/open.js';
import { print, table } from './output.js';

export function registerAdmin(program: Command): void {
  const token = program
    .command('admin')
    .description('operator access to the admin API and the console')
    .command('token')
    .description('manage admin tokens');
  token
    .command('create')
    .description('create an admin token; prints it once')
    .option('--name <name>', 'what the token is for (letters, digits, ". _ -" and spaces)', 'operator')
    .option('--read-only', 'the token can see everything and change nothing')
    .option('--json', 'print JSON')
    .action(async (o: { name: string; readOnly?: boolean; json?: boolean }) =>
      withAdmin(async (admin) => {
        const t = await admin.createAdminToken(o.name, o.readOnly === true);
        print(
          o.json,
          { id: t.id, name: t.name, read_only: t.read_only, token: t.token },
          () =>
            `admin token ${t.id} (${t.name}${t.read_only ? ', read-only' : ''}) created\ntoken: ${t.token}\n(shown once; store it now)`,
        );
      }),
    );
  token
    .command('list')
    .description('list admin tokens (never the tokens themselves)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) =>
      withAdmin(async (admin) => {
        const rows = await admin.listAdminTokens();
        print(o.json, rows, () =>
          table(
            rows.map((r) => ({ ...r })),
            ['id', 'name', 'read_only', 'created_at', 'revoked_at'],
          ),
        );
      }),
    );
  token
    .command('revoke <id>')
    .description('revoke an admin token at once')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) =>
      withAdmin(async (admin) => {
        await admin.revokeAdminToken(id);
        print(o.json, { revoked: Number(id) }, () => `admin token ${id} revoked`);
      }),
    );
}
