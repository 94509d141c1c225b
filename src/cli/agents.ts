// admp agent add | list, admp token rotate
import type { Command } from 'commander';
import { adminAction, listCommand } from './admin-action.js';

export function registerAgents(program: Command): void {
  const agent = program.command('agent').description('manage local agents');
  adminAction<{ domain?: string }>(
    agent
      .command('add <id>')
      .description('create an agent; prints its bearer token and HMAC secret once')
      .option('--domain <domain>', 'agents domain (default: the first of ADMP_DOMAINS)'),
    async (admin, [id], opts) => {
      const a = await admin.addAgent(id!, opts.domain);
      return {
        json: { id: a.id, address: `${a.id}@${a.domain}`, token: a.token, hmac_secret: a.hmac_secret },
        text: `agent ${a.id}@${a.domain} created\ntoken:       ${a.token}\nhmac secret: ${a.hmac_secret}\n(shown once; store them now)`,
      };
    },
  );
  listCommand(
    agent,
    'list agents',
    (admin) => admin.listAgents(),
    ['id', 'address', 'status', 'created_at'],
    (r) => ({ ...r, address: `${r.id}@${r.domain}` }),
  );

  adminAction<{ hmac?: boolean }>(
    program
      .command('token')
      .description('manage agent credentials')
      .command('rotate <id>')
      .description('revoke the current bearer token and issue a new one')
      .option('--hmac', 'rotate the HMAC secret as well'),
    async (admin, [id], opts) => {
      const creds = await admin.rotateCredentials(id!, opts.hmac ? ['token', 'hmac'] : ['token']);
      const text = Object.entries(creds)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n');
      return { json: { id, ...creds }, text };
    },
  );
}
