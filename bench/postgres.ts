// One PostgreSQL for the whole run (DATABASE_URL, else a throwaway embedded one) and
// a database of its own for each contender, so their tables, indexes and autovacuum
// do not meet.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbedded } from '../src/db/embedded.js';
import { createPool } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';

export interface BenchPostgres {
  /** Where the server came from, for the report. */
  readonly source: 'DATABASE_URL' | 'embedded';
  readonly adminUrl: string;
  /** The postmaster's pid when it runs on this machine (for CPU accounting). */
  postmasterPid(): Promise<number | undefined>;
  /** A fresh database named `admp_bench_<name>`, migrated with our schema when asked. */
  database(name: string, options?: { migrate?: boolean }): Promise<BenchDatabase>;
  stop(): Promise<void>;
}

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  readonly pool: pg.Pool;
  close(): Promise<void>;
  /** Closes the pool and drops the database (its autovacuum then stays out of later windows). */
  drop(): Promise<void>;
}

/** f, run at most once; later calls get the first call's promise. */
export function once(f: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= f());
}

async function adminQuery<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

export async function startPostgres(log: (line: string) => void): Promise<BenchPostgres> {
  let dir: string | undefined;
  let stopEmbedded: (() => Promise<void>) | undefined;
  let adminUrl = process.env.DATABASE_URL ?? '';
  if (!adminUrl) {
    dir = mkdtempSync(join(tmpdir(), 'admp-bench-pg-'));
    chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root
    const embedded = await startEmbedded({ dataDir: join(dir, 'pg'), port: 0, ephemeral: true });
    adminUrl = embedded.adminUrl; // the bench creates databases
    stopEmbedded = () => embedded.stop();
  }
  const created: string[] = [];
  const url = (name: string) => Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  log(`PostgreSQL: ${dir ? 'embedded (throwaway)' : 'DATABASE_URL'} ${adminUrl.replace(/:[^:@/]*@/, ':***@')}`);
  return {
    source: dir ? 'embedded' : 'DATABASE_URL',
    adminUrl,
    async postmasterPid() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        // A backend's parent is the postmaster; readable only when the server is local
        // (and only while this backend lives).
        const stat = await readFile(`/proc/${rows[0]!.pid}/stat`, 'utf8').catch(() => undefined);
        return stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : undefined;
      } finally {
        await c.end();
      }
    },
    async database(name, options = {}) {
      const db = `admp_bench_${name}`;
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await adminQuery(adminUrl, `CREATE DATABASE ${db}`);
      created.push(db);
      const pool = createPool(url(db), 8);
      if (options.migrate) await migrate(pool);
      const close = once(() => pool.end());
      return {
        name: db,
        url: url(db),
        pool,
        close,
        drop: once(async () => {
          await close();
          await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
        }),
      };
    },
    async stop() {
      if (stopEmbedded) {
        await stopEmbedded().catch((e: Error) => log(`embedded PostgreSQL stop: ${e.message}`));
        rmSync(dir!, { recursive: true, force: true });
        return;
      }
      // A shared server keeps running; only our databases go.
      for (const db of created)
        await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
    },
  };
}

/** Flushes dirty buffers before a measured window so an earlier step's checkpoint does not land in it. */
export async function settle(pool: pg.Pool, tables: string[]): Promise<void> {
  for (const t of tables) await pool.query(`VACUUM ANALYZE ${t}`);
  // CHECKPOINT needs superuser (or pg_checkpoint on 15+); skip it where we lack the right.
  await pool.query('CHECKPOINT').catch(() => undefined);
}

export interface CommitStats {
  readonly commits: number;
  readonly rows: number;
}

/** Commits and rows in a database: rows per commit shows how well the enqueue batcher gathers. */
export async function commitStats(pool: pg.Pool): Promise<CommitStats> {
  const { rows } = await pool.query<CommitStats>(
    `SELECT xact_commit::float8 AS commits, (SELECT count(*) FROM message)::float8 AS rows FROM pg_stat_database WHERE datname = current_database()`,
  );
  return rows[0]!;
}

// pg_stat_database lags by up to PGSTAT_MIN_INTERVAL (1 s); close enough over a 15 s window.
export const rowsPerCommit = (before: CommitStats, after: CommitStats): string =>
  ((after.rows - before.rows) / Math.max(1, after.commits - before.commits)).toFixed(1);
