// Distributing an ADMP database with Citus (`admp scale citus`, docs/scaling.md).
// Tables with a to_agent_id column (message, message_dedupe) are hash-distributed by it
// and colocated, so one agent's rows and dedupe keys share a shard; every other table is
// small and becomes a reference table (a copy on every node, joinable from any shard).
// schema_migration stays on the coordinator. Functions are not distributed:
// enqueue_message runs on the coordinator, so its NOTIFY reaches the long polls that
// LISTEN there. A pre-check refuses to start when something would not distribute correctly.
import type pg from 'pg';

type Queryable = Pick<pg.Pool, 'query'>;

/** The distribution column, and the table every distributed table is colocated with. */
export const DISTRIBUTION_COLUMN = 'to_agent_id';
export const COLOCATE_WITH = 'message';
/**
 * Coordinator-only bookkeeping, never joined with queue tables: the migrations applied,
 * and the rate quota counters (every instance connects to the coordinator; as a
 * reference table each count would be written to every node).
 */
export const COORDINATOR_ONLY: ReadonlySet<string> = new Set(['schema_migration', 'rate_quota']);

export interface CitusPlan {
  /** In creation order; already-distributed tables are left out. */
  readonly distribute: string[];
  readonly reference: string[];
  readonly done: string[];
  /** Why distributing would be wrong; empty when it may run. */
  readonly problems: string[];
}

interface TableInfo {
  name: string;
  hasColumn: boolean;
  /**
   * Hash-distributed, reference table, a Citus local table (in Citus's metadata but only on
   * the coordinator: Citus makes one of a new table with a foreign key to a reference
   * table, as a later migration's may be), or a plain local table.
   */
  citus: 'h' | 'n' | 'l' | null;
  uniques: { name: string; columns: string[] }[];
  fks: { name: string; target: string; columns: string[] }[];
  triggers: string[];
}

async function hasCitus(db: Queryable): Promise<boolean> {
  const { rows } = await db.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'");
  return rows.length > 0;
}

/** True when this database's message table is distributed by Citus. */
export async function isDistributed(db: Queryable): Promise<boolean> {
  if (!(await hasCitus(db))) return false;
  const { rows } = await db.query(
    "SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass('message') AND partmethod = 'h'",
  );
  return rows.length > 0;
}

async function tables(db: Queryable, citus: boolean): Promise<TableInfo[]> {
  const { rows } = await db.query<TableInfo>(
    `SELECT c.relname AS name,
            EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $1 AND NOT a.attisdropped) AS "hasColumn",
            ${
              citus
                ? `(SELECT CASE WHEN p.partmethod = 'h' THEN 'h' WHEN p.repmodel = 't' THEN 'n' ELSE 'l' END
                      FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)`
                : 'NULL'
            } AS citus,
            coalesce((SELECT json_agg(json_build_object('name', i.relname, 'columns',
                        (SELECT coalesce(json_agg(a.attname), '[]') FROM pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attnum = ANY(x.indkey))))
                        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                       WHERE x.indrelid = c.oid AND x.indisunique), '[]') AS uniques,
            coalesce((SELECT json_agg(json_build_object('name', k.conname, 'target', t.relname, 'columns',
                        (SELECT coalesce(json_agg(a.attname), '[]') FROM pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attnum = ANY(k.conkey))))
                        FROM pg_constraint k JOIN pg_class t ON t.oid = k.confrelid
                       WHERE k.conrelid = c.oid AND k.contype = 'f'), '[]') AS fks,
            coalesce((SELECT json_agg(g.tgname) FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal), '[]') AS triggers
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      ORDER BY c.relname`,
    [DISTRIBUTION_COLUMN],
  );
  return rows;
}

/** What `admp scale citus` would do, and what stops it. Reads only. */
export async function planCitus(db: Queryable): Promise<CitusPlan> {
  const problems: string[] = [];
  const citus = await hasCitus(db);
  if (!citus) problems.push('the citus extension is not installed in this database (CREATE EXTENSION citus)');
  else {
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND groupid <> 0",
    );
    if (rows[0]!.n === 0) problems.push('no worker node is registered in this database (SELECT citus_add_node(…))');
  }
  const all = (await tables(db, citus)).filter((t) => !COORDINATOR_ONLY.has(t.name));
  if (!all.some((t) => t.name === COLOCATE_WITH)) problems.push(`no ${COLOCATE_WITH} table: run the migrations first`);
  const sharded = new Set(all.filter((t) => t.hasColumn).map((t) => t.name));
  for (const t of all) {
    if (t.citus === 'h' && !t.hasColumn) problems.push(`${t.name} is distributed but has no ${DISTRIBUTION_COLUMN}`);
    if (t.hasColumn && t.citus === 'n') problems.push(`${t.name} is a reference table but has ${DISTRIBUTION_COLUMN}`);
    if (t.triggers.length > 0 && sharded.has(t.name))
      problems.push(`${t.name} has triggers (${t.triggers.join(', ')}), which Citus does not run on shards`);
    for (const u of t.uniques)
      if (sharded.has(t.name) && !u.columns.includes(DISTRIBUTION_COLUMN))
        problems.push(
          `unique index ${u.name} on ${t.name} lacks ${DISTRIBUTION_COLUMN}, so it cannot be enforced per shard`,
        );
    for (const fk of t.fks) {
      if (sharded.has(fk.target) && !sharded.has(t.name))
        problems.push(`${t.name}.${fk.name} references the distributed table ${fk.target} from a reference table`);
      if (sharded.has(fk.target) && sharded.has(t.name) && !fk.columns.includes(DISTRIBUTION_COLUMN))
        problems.push(`${t.name}.${fk.name} references ${fk.target} without ${DISTRIBUTION_COLUMN}`);
    }
  }
  // Reference tables in foreign-key order: a table after the tables it references.
  const undone = (t: TableInfo) => t.citus === null || t.citus === 'l';
  const pending = all.filter((t) => !t.hasColumn && undone(t));
  const reference: string[] = [];
  while (pending.length > 0) {
    const i = pending.findIndex((t) => t.fks.every((fk) => !pending.some((p) => p.name === fk.target && p !== t)));
    if (i < 0) {
      problems.push(`foreign-key cycle among ${pending.map((t) => t.name).join(', ')}`);
      break;
    }
    reference.push(pending.splice(i, 1)[0]!.name);
  }
  const distribute = all
    .filter((t) => t.hasColumn && undone(t))
    .map((t) => t.name)
    .sort((a, b) => Number(b === COLOCATE_WITH) - Number(a === COLOCATE_WITH));
  return { distribute, reference, done: all.filter((t) => !undone(t)).map((t) => t.name), problems };
}

export class CitusPlanError extends Error {
  constructor(readonly problems: string[]) {
    super(`not distributing:\n  - ${problems.join('\n  - ')}`);
  }
}

/**
 * Distributes the tables `planCitus` lists, one statement at a time (each is
 * idempotent: a table already distributed is skipped on the next run), and removes
 * the local copies Citus leaves on the coordinator. Throws CitusPlanError, changing
 * nothing, when the pre-check finds a problem.
 */
export async function distributeCitus(db: Queryable): Promise<CitusPlan> {
  const plan = await planCitus(db);
  if (plan.problems.length > 0) throw new CitusPlanError(plan.problems);
  for (const t of plan.reference) await db.query('SELECT create_reference_table($1)', [t]);
  for (const t of plan.distribute)
    await db.query('SELECT create_distributed_table($1, $2, colocate_with => $3)', [
      t,
      DISTRIBUTION_COLUMN,
      t === COLOCATE_WITH ? 'default' : COLOCATE_WITH,
    ]);
  for (const t of [...plan.reference, ...plan.distribute])
    await db.query('SELECT truncate_local_data_after_distributing_table($1)', [t]);
  return plan;
}
