// admp agent add | list, admp token rotate
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { isAgentId, isDomain } from '../core/address.js';
import { AdmpError } from '../errors.js';
import { openDatabase } from '../db/connect.js';
import { addAgent, listAgents, rotateCredentials } from '../db/agents.js';
import { print, table } from './output.js';

async function withDb<T>(
  fn: (pool: import('pg').Pool, config: ReturnType<typeof loadConfig>) => Promise<T>,
): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config, { migrate: config.migrateOnStart, poolMax: 2 });
  try {
    return await fn(db.pool, config);
  } finally {
    await db.close();
  }
}
export { withDb };

export function registerAgents(program: Command): void {
  const agent = program.command('agent').description('manage local agents');
  agent
    .command('add <id>')
    .description('create an agent; prints its bearer token and HMAC secret once')
    .option('--domain <domain>', 'agents domain (default: the first of ADMP_DOMAINS)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { domain?: string; json?: boolean }) =>
      withDb(async (pool, config) => {
        const domain = (opts.domain ?? config.domains[0]!).toLowerCase();
        if (!isAgentId(id))
          throw new AdmpError(
            'bad_request',
            `agent id "${id}": use lower-case letters, digits, '.', '_' or '-' (max 64)`,
          );
        if (!isDomain(domain)) throw new AdmpError('bad_request', `domain "${domain}" is not a DNS name`);
        const a = await addAgent(pool, id, domain);
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
      withDb(async (pool) => {
        const rows = await listAgents(pool);
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
      withDb(async (pool) => {
        const creds = await rotateCredentials(pool, id, opts.hmac ? ['token', 'hmac'] : ['token']);
        print(opts.json, { id, ...creds }, () =>
          Object.entries(creds)
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n'),
        );
      }),
    );
}
