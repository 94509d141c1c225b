// admp admin token create | list | revoke: operator credentials for the admin API
// and the console (/console). Created here, on the server, because the first token
// cannot be asked for over an API that needs one.
import type { Command } from 'commander';
import { adminAction, listCommand } from './admin-action.js';
import type { Admin } from '../admin/admin.js';

export function registerAdmin(program: Command): void {
  const token = program
    .command('admin')
    .description('operator access to the admin API and the console')
    .command('token')
    .description('manage admin tokens');
  adminAction<{ name: string; readOnly?: boolean }>(
    token
      .command('create')
      .description('create an admin token; prints it once')
      .option('--name <name>', 'what the token is for (letters, digits, ". _ -" and spaces)', 'operator')
      .option('--read-only', 'the token can see everything and change nothing'),
    async (admin, _args, o) => {
      const t = await admin.createAdminToken(o.name, o.readOnly === true);
      return {
        json: { id: t.id, name: t.name, read_only: t.read_only, token: t.token },
        text: `admin token ${t.id} (${t.name}${t.read_only ? ', read-only' : ''}) created\ntoken: ${t.token}\n(shown once; store it now)`,
      };
    },
  );
  listCommand(
    adminAction,
    token,
    'list admin tokens (never the tokens themselves)',
    (admin: Admin) => admin.listAdminTokens(),
    ['id', 'name', 'read_only', 'created_at', 'revoked_at'],
  );
  adminAction(token.command('revoke <id>').description('revoke an admin token at once'), async (admin, [id]) => {
    await admin.revokeAdminToken(id!);
    return { json: { revoked: Number(id) }, text: `admin token ${id} revoked` };
  });
}
