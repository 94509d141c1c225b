// One fresh, migrated database per test file, on the server `npm test` provides.
// `npm test` migrates one template database first (ADMP_TEST_TEMPLATE); a migrated
// test database is a copy of it (CREATE DATABASE … TEMPLATE, a file copy), so no test
// file runs the migrations from scratch. migrate() then only confirms it is current.
// In the Citus test mode (`npm run test:citus`, ADMP_TEST_CITUS_WORKERS set by
// test/run.ts) every database is made on every node of the cluster, and the template is
// distributed after migrating: a copy on every node is a complete distributed database.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { distributeCitus } from '../../src/db/citus.js';
import { copyTemplate, createCitusDatabase, dropDatabaseOnNodes, freezeTemplate } from './citus.js';

export interface TestDatabase {
  readonly url: string;
  readonly pool: pg.Pool;
  /** Simulates a database outage: refuses new connections and ends existing ones. */
  block(): Promise<void>;
  unblock(): Promise<void>;
  drop(): Promise<void>;
}

async function asAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl() });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function adminUrl(): string {
  const url = process.env.ADMP_TEST_ADMIN_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('no test database: run the tests with `npm test` (it provides one) or set DATABASE_URL');
  return url;
}

/** The Citus workers' admin URLs in the Citus test mode; empty otherwise. */
export function citusWorkers(): string[] {
  return (process.env.ADMP_TEST_CITUS_WORKERS ?? '').split(',').filter(Boolean);
}

/** Creates the template that migrated test databases are copied from; returns its name. */
export async function createTemplateDatabase(): Promise<string> {
  const db = await createTestDatabase({ migrate: false });
  await migrate(db.pool);
  const workers = citusWorkers();
  if (workers.length > 0) await distributeCitus(db.pool);
  await db.pool.end();
  const name = new URL(db.url).pathname.slice(1);
  // Citus's maintenance daemon stays connected to a Citus database: no copy while it is.
  if (workers.length > 0) await freezeTemplate([adminUrl(), ...workers], name);
  return name;
}

export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const admin = adminUrl();
  const name = `admp_t_${randomBytes(6).toString('hex')}`;
  const workers = citusWorkers();
  const template = options.migrate !== false ? process.env.ADMP_TEST_TEMPLATE : undefined;
  if (workers.length === 0) await asAdmin(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
  else if (template) await copyTemplate([admin, ...workers], template, name);
  else await createCitusDatabase(admin, workers, name);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, 20);
  if (options.migrate !== false) {
    await migrate(pool);
    if (workers.length > 0) await distributeCitus(pool);
  }
  return {
    url,
    pool,
    async block() {
      await asAdmin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await asAdmin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`);
    },
    unblock: () => asAdmin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`),
    async drop() {
      await pool.end().catch(() => undefined);
      await dropDatabaseOnNodes([admin, ...workers], name);
    },
  };
}
