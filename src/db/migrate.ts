// Applies migrations/NNNN_name.sql in order, each in its own transaction, under a
// transaction-scoped advisory lock: running twice, or two processes at once, is harmless
// (the second waits, then finds nothing to do).
import { readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { parse } from 'libpg-query';
import { distributeCitus, isDistributed } from './citus.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
// Arbitrary but fixed: the advisory lock key shared by every ADMP process.
const LOCK_KEY = 0x41444d50; // 'ADMP'

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (f) => {
      const sql = await readFile(dir + f, 'utf8');
      return {
        version: Number(f.slice(0, 4)),
        name: f.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    }),
  );
}

/**
 * A migration's statements, split by PostgreSQL's own parser (libpg-query: comments,
 * quoted strings and $$ bodies are its business, not a regular expression's). Each is sent
 * alone: on a Citus database a DDL statement is passed on to the shards with its query
 * text, and the text of a multi-statement query is all of it, which the workers refuse
 * ("cannot insert multiple commands into a prepared statement").
 */
export async function statementsOf(sql: string): Promise<string[]> {
  const bytes = Buffer.from(sql, 'utf8');
  // Offsets are in bytes; a length of 0 means "to the end".
  return ((await parse(sql)).stmts ?? []).map(({ stmt_location: at = 0, stmt_len: len = 0 }) =>
    bytes.subarray(at, len ? at + len : bytes.length).toString('utf8'),
  );
}

/**
 * Checksums of earlier texts of a migration that did the same to the database: a database
 * that applied one of them is current. 0009: its backfill was rewritten to a form Citus
 * accepts on a distributed table (same numbers).
 */
const EQUIVALENT: Record<number, readonly string[]> = {
  9: ['e0ba2f2fd05dbbae720339c5521b97d07c7597908f79382f352b25493048fafe'],
};

const BOOKKEEPING = `CREATE TABLE IF NOT EXISTS schema_migration (
  version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;

/** Returns the names of the migrations this call applied. */
export async function migrate(pool: pg.Pool, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  const applied: string[] = [];
  for (const m of migrations) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      await client.query(BOOKKEEPING);
      const done = await client.query<{ checksum: string }>(
        'SELECT checksum FROM schema_migration WHERE version = $1',
        [m.version],
      );
      if (done.rows[0]) {
        if (done.rows[0].checksum !== m.checksum && !EQUIVALENT[m.version]?.includes(done.rows[0].checksum)) {
          throw new Error(
            `migration ${m.name} was changed after it was applied (checksum mismatch); add a new migration instead`,
          );
        }
        await client.query('COMMIT');
        continue;
      }
      // On Citus, DDL on a distributed table runs on its shards over parallel connections, and
      // a function command later in the same transaction (0013: ALTER TABLE, then CREATE
      // FUNCTION) then fails; one connection per node makes every mix of the two valid.
      await client.query(
        "SELECT set_config('citus.multi_shard_modify_mode', 'sequential', true) FROM pg_extension WHERE extname = 'citus'",
      );
      for (const statement of await statementsOf(m.sql)) await client.query(statement);
      await client.query('INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        m.checksum,
      ]);
      await client.query('COMMIT');
      applied.push(m.name);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
  // On a database `admp scale citus` distributed, a table a migration added is
  // distributed (or made a reference table) the same way, or the pre-check stops here.
  if (applied.length > 0 && (await isDistributed(pool))) await distributeCitus(pool);
  return applied;
}

/** Versions known on disk but not applied: empty when the schema is current (used by /readyz). */
export async function pendingMigrations(pool: pg.Pool, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  const exists = await pool.query<{ t: string | null }>("SELECT to_regclass('schema_migration')::text AS t");
  if (!exists.rows[0]?.t) return migrations.map((m) => m.name);
  const { rows } = await pool.query<{ version: number }>('SELECT version FROM schema_migration');
  const have = new Set(rows.map((r) => r.version));
  return migrations.filter((m) => !have.has(m.version)).map((m) => m.name);
}
