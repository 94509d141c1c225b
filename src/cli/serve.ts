// admp serve | migrate | config
import type { Command } from 'commander';
import { configMarkdown, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { openDatabase } from '../db/connect.js';
import { migrate } from '../db/migrate.js';
import { startServer } from '../server.js';
import { print } from './output.js';

export function registerServe(program: Command): void {
  program.command('serve').description('run the agent API, the Rspamd ingress endpoint and the LMTP receiver').action(async () => {
    const config = loadConfig();
    const log = createLogger(config.logLevel);
    const server = await startServer(config, log);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ event: 'shutdown', signal }, 'shutting down');
      server.stop().then(() => process.exit(0), (err) => { log.error({ err }, 'shutdown failed'); process.exit(1); });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

  program.command('migrate').description('apply pending database migrations (safe to run twice or concurrently)')
    .option('--json', 'print JSON').action(async (opts: { json?: boolean }) => {
      const db = await openDatabase(loadConfig());
      try {
        const applied = await migrate(db.pool);
        print(opts.json, { applied }, () => (applied.length ? `applied: ${applied.join(', ')}` : 'schema is current'));
      } finally {
        await db.close();
      }
    });

  program.command('config').description('validate and print the effective configuration')
    .option('--json', 'print JSON').option('--markdown', 'print the configuration reference table')
    .action((opts: { json?: boolean; markdown?: boolean }) => {
      if (opts.markdown) return print(false, null, configMarkdown);
      const config = loadConfig();
      const shown = { ...config, databaseUrl: config.databaseUrl.replace(/:[^:@/]*@/, ':***@'), ingressToken: config.ingressToken ? '***' : '' };
      print(opts.json, shown, () => Object.entries(shown).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n'));
    });
}
