// admp agent add | list, admp token rotate
import type { Command } from 'commander';
import { withAdmin } from '../app/open.js';
import { print, table } from './output.js';

export function registerAgents(program: Command): void {
  const agent = program.command('agent').description('manage local agents');
  agent
    .command('add <id>')
    .description('create an agent; prints its bearer token and HMAC secret once')
    .option('--domain <domain>', 'agents domain (default: the first of ADMP_DOMAINS)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { domain?: string; json?: boolean }) =>
      withAdmin(async (admin) => {
        const a = await admin.addAgent(id, opts.domain);
        print(
          opts.json,
          { id: a.id, address: `${a.id}@${a.domain}`, token: a.token, hmac_secret: a.hmac_secret },
          () =>
            `agent ${a.id}@${a.domain} created\ntoken:       ${a.token}\nhmac secret: ${a.hmac_secret}\n(shown once; store them now)`,
        );
      }),
    );
  agent
    .command('list')
    .description('list agents')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) =>
      withAdmin(async (admin) => {
        const rows = await admin.listAgents();
        print(opts.json, rows, () =>
          table(
            rows.map((r) => ({ ...r, address: `${r.id}@${r.domain}` })),
            ['id', 'address', 'status', 'created_at'],
          ),
        );
      }),
    );

  program
    .command('token')
    .description('manage agent credentials')
    .command('rotate <id>')
    .description('revoke the current bearer token and issue a new one')
    .option('--hmac', 'rotate the HMAC secret as well')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { hmac?: boolean; json?: boolean }) =>
      withAdmin(async (admin) => {
        const creds = await admin.rotateCredentials(id, opts.hmac ? ['token', 'hmac'] : ['token']);
        print(opts.json, { id, ...creds }, () =>
          Object.entries(creds)
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n'),
        );
      }),
    );
}
