// `admp scale citus` on a real Citus cluster (a coordinator and two workers on loopback,
// Debian's PostgreSQL 15 with the Citus that .ci/run builds): the refusing pre-check, the
// distribution it makes, that it is idempotent, and docs/scaling.md's adding a worker and
// rebalancing with the queue still working after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createPool } from '../../src/db/pool.js';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate.js';
import { COORDINATOR_ONLY, distributeCitus, planCitus, CitusPlanError } from '../../src/db/citus.js';
import { enqueueRows } from '../../src/db/enqueue.js';
import { claim } from '../../src/db/claim.js';
import { citusMissing, createCitusDatabase, startCitusCluster } from '../helpers/citus.js';
import { requirePackage } from '../helpers/requires.js';
import { addAgent } from '../../src/db/agents.js';
import { addTenant } from '../../src/db/tenants.js';
import { createAddressToken, findAddressToken } from '../../src/db/address-tokens.js';
import { citusWorkers, createTestDatabase } from '../helpers/db.js';

const run = promisify(execFile);
const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;

test('admp scale citus: refuses a schema it would distribute wrongly, distributes, is idempotent; a new worker takes shards', async (t) => {
  const missing = citusMissing();
  if (!requirePackage(t, missing === undefined, missing ?? '')) return;
  const cluster = await startCitusCluster({ workers: 2 });
  const admin = cluster.url(cluster.coordinator);
  const workers = () => cluster.workers.map((w) => cluster.url(w));
  await createCitusDatabase(admin, workers(), 'admp_scale');
  const url = cluster.url(cluster.coordinator, 'admp_scale');
  const pool = createPool(url, 4);
  t.after(async () => {
    await pool.end();
    await cluster.stop();
  });
  await migrate(pool);
  assert.equal((await pool.query('SHOW plan_cache_mode')).rows[0].plan_cache_mode, 'force_custom_plan');
  const admp = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', main, 'scale', 'citus', ...args], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, ADMP_LOG_LEVEL: 'silent' },
    });

  // A table keyed by agent whose unique index lacks the distribution column: refused, nothing changed.
  await pool.query('CREATE TABLE agent_note (to_agent_id text NOT NULL, note_id bigint UNIQUE)');
  const refused = await admp().then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  assert.ok(refused, 'the command refused');
  assert.match(refused.stderr, /unique index agent_note_note_id_key on agent_note lacks to_agent_id/);
  await assert.rejects(distributeCitus(pool), CitusPlanError);
  assert.equal((await pool.query('SELECT 1 FROM pg_dist_partition')).rowCount, 0, 'nothing was distributed');
  await pool.query('DROP TABLE agent_note');

  // Rows written before distributing move to the shards.
  await pool.query("INSERT INTO agent (id, domain) VALUES ('bob', 'agents.test')");
  const item = (n: number) => ({
    to_agent_id: `agent${n}`,
    channel: 'http' as const,
    from_agent: 'alice@agents.test',
    type: 't',
    body: { n },
    status: 'delivered' as const,
    ttl_sec: 600,
    idempotency_key: `k${n}`,
  });
  await enqueueRows(
    pool,
    Array.from({ length: 40 }, (_, n) => item(n)),
  );

  const plan = JSON.parse((await admp('--json')).stdout);
  assert.deepEqual(plan.distribute, ['message', 'message_dedupe', 'message_search']);
  // Every other table, a referenced table before the tables that reference it.
  for (const t of ['agent', 'agent_credential', 'agent_key', 'policy_rule']) assert.ok(plan.reference.includes(t), t);
  assert.ok(plan.reference.indexOf('agent') < plan.reference.indexOf('agent_credential'));
  assert.deepEqual(plan.problems, []);
  const { rows } = await pool.query<{ t: string; method: string; column: string | null; colocation: number }>(
    `SELECT logicalrelid::text AS t, partmethod::text AS method, column_to_column_name(logicalrelid, partkey) AS column,
            colocationid AS colocation
       FROM pg_dist_partition ORDER BY 1`,
  );
  const of = (name: string) => rows.find((r) => r.t === name)!;
  assert.equal(of('message').method, 'h');
  assert.equal(of('message').column, 'to_agent_id');
  assert.equal(of('message_dedupe').column, 'to_agent_id');
  assert.equal(of('message_dedupe').colocation, of('message').colocation, 'colocated');
  for (const r of plan.reference) assert.equal(of(r).method, 'n', r);
  assert.equal(
    rows.find((r) => r.t === 'schema_migration'),
    undefined,
    'schema_migration stays on the coordinator',
  );
  assert.equal(
    rows.find((r) => r.t === 'rate_quota'),
    undefined,
    'the rate quota counters stay on the coordinator',
  );
  assert.ok(!plan.reference.includes('rate_quota'));
  // The local copies were removed; the rows are on the workers.
  assert.equal((await pool.query("SELECT pg_relation_size('message')::int AS n")).rows[0].n, 0);
  assert.equal((await pool.query('SELECT count(*)::int AS n FROM message')).rows[0].n, 40);

  // Idempotent.
  const again = JSON.parse((await admp('--json')).stdout);
  assert.deepEqual([again.distribute, again.reference], [[], []]);
  assert.equal((await planCitus(pool)).problems.length, 0);

  // docs/scaling.md: add a worker, register it, rebalance; dedupe and claims still work.
  const w3 = await cluster.startWorker();
  const w3url = cluster.url(w3);
  const c = new pg.Client({ connectionString: w3url });
  await c.connect();
  await c.query('CREATE DATABASE admp_scale');
  await c.end();
  const c2 = new pg.Client({ connectionString: cluster.url(w3, 'admp_scale') });
  await c2.connect();
  await c2.query('CREATE EXTENSION citus');
  await c2.end();
  await pool.query('SELECT citus_add_node($1, $2)', [w3.host, w3.port]);
  await pool.query("SELECT rebalance_table_shards(shard_transfer_mode => 'block_writes')");
  const placed = await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM citus_shards WHERE nodeport = $1 AND table_name = 'message'::regclass",
    [w3.port],
  );
  assert.ok(placed.rows[0]!.n > 0, 'the new worker holds message shards');
  const r = await enqueueRows(pool, [item(1), item(41)]);
  assert.deepEqual(
    r.map((x) => x.duplicate),
    [true, false],
  );
  for (const n of [...Array.from({ length: 40 }, (_, i) => i), 41])
    assert.equal((await claim(pool, `agent${n}`, 5, 30)).rows.length, 1, `agent${n} gets its message`);
});

test('an existing distributed database takes migration 0017 (tenants, address tokens): new reference tables, twice is harmless', async (t) => {
  const missing = citusMissing();
  if (!requirePackage(t, missing === undefined, missing ?? '')) return;
  const cluster = await startCitusCluster({ workers: 2 });
  const admin = cluster.url(cluster.coordinator);
  await createCitusDatabase(
    admin,
    cluster.workers.map((w) => cluster.url(w)),
    'admp_upgrade',
  );
  const pool = createPool(cluster.url(cluster.coordinator, 'admp_upgrade'), 4);
  const before = mkdtempSync(join(tmpdir(), 'admp-migrations-'));
  t.after(async () => {
    rmSync(before, { recursive: true, force: true });
    await pool.end();
    await cluster.stop();
  });
  // The schema as it was before tenants, distributed, with an agent of a plain domain.
  for (const f of readdirSync(MIGRATIONS_DIR).filter((f) => f < '0017'))
    copyFileSync(join(MIGRATIONS_DIR, f), join(before, f));
  await migrate(pool, `${before}/`);
  await addAgent(pool, 'bob', 'agents.test');
  await distributeCitus(pool);
  // Upgrading applies 0017 and makes its tables reference tables like agent.
  assert.ok((await migrate(pool)).includes('0017_tenants'));
  const kinds = await pool.query<{ t: string; method: string }>(
    "SELECT logicalrelid::text AS t, partmethod::text AS method FROM pg_dist_partition WHERE logicalrelid::text IN ('tenant', 'address_token', 'agent') ORDER BY 1",
  );
  assert.deepEqual(kinds.rows, [
    { t: 'address_token', method: 'n' },
    { t: 'agent', method: 'n' },
    { t: 'tenant', method: 'n' },
  ]);
  const repl = await pool.query<{ t: string; model: string }>(
    "SELECT logicalrelid::text AS t, repmodel::text AS model FROM pg_dist_partition WHERE logicalrelid::text IN ('tenant', 'address_token')",
  );
  assert.ok(
    repl.rows.every((r) => r.model === 't'),
    `reference tables, not Citus local tables: ${JSON.stringify(repl.rows)}`,
  );
  // Once more, as a second run would: harmless.
  await pool.query('DELETE FROM schema_migration WHERE version = 17');
  assert.ok((await migrate(pool)).includes('0017_tenants'));
  // The old agent is unchanged; a tenant's agent is keyed by its address; tokens work across nodes.
  assert.equal((await pool.query("SELECT id FROM agent WHERE domain = 'agents.test'")).rows[0].id, 'bob');
  await addTenant(pool, 'acme.tenants.test');
  await addAgent(pool, 'bob@acme.tenants.test', 'acme.tenants.test', true);
  await assert.rejects(pool.query("INSERT INTO agent (id, domain) VALUES ('bob@acme.tenants.test', 'other.test')"));
  const tok = await createAddressToken(pool, { id: 'bob@acme.tenants.test', domain: 'acme.tenants.test' });
  assert.deepEqual(await findAddressToken(pool, tok.token), {
    agent_id: 'bob@acme.tenants.test',
    domain: 'acme.tenants.test',
    status: 'active',
    revoked: false,
  });
  const r = await enqueueRows(pool, [
    {
      to_agent_id: 'bob@acme.tenants.test',
      channel: 'http',
      from_agent: 'alice@agents.test',
      type: 't',
      body: {},
      status: 'delivered',
      ttl_sec: 600,
    },
  ]);
  assert.equal(r[0]!.duplicate, false);
  assert.equal((await claim(pool, 'bob@acme.tenants.test', 5, 30)).rows.length, 1);
});

test('on a single PostgreSQL the pool keeps one generic plan per statement', async (t) => {
  if (citusWorkers().length > 0) return t.skip('a single-server check');
  const db = await createTestDatabase();
  t.after(() => db.drop());
  assert.equal((await db.pool.query('SHOW plan_cache_mode')).rows[0].plan_cache_mode, 'force_generic_plan');
});

test('every migration after the first applies on a distributed database: 0009 numbers existing rows, new tables become reference tables', async (t) => {
  const missing = citusMissing();
  if (!requirePackage(t, missing === undefined, missing ?? '')) return;
  const cluster = await startCitusCluster({ workers: 2 });
  const admin = cluster.url(cluster.coordinator);
  await createCitusDatabase(
    admin,
    cluster.workers.map((w) => cluster.url(w)),
    'admp_upgrade',
  );
  const pool = createPool(cluster.url(cluster.coordinator, 'admp_upgrade'), 4);
  const first = mkdtempSync(join(tmpdir(), 'admp-migrations-'));
  t.after(async () => {
    await pool.end();
    await cluster.stop();
    rmSync(first, { recursive: true, force: true });
  });
  // The schema of the first migration, distributed, with rows created a millisecond apart.
  const [one] = (await readdir(MIGRATIONS_DIR)).filter((f) => f.startsWith('0001_'));
  copyFileSync(join(MIGRATIONS_DIR, one!), join(first, one!));
  await migrate(pool, `${first}/`);
  await distributeCitus(pool);
  for (let n = 0; n < 20; n++)
    await pool.query(
      `INSERT INTO message (to_agent_id, channel, from_agent, type, body, status, ttl_sec, expires_at, created_at, delivered_at)
       VALUES ($1, 'http', 'alice@agents.test', 't', $2, 'delivered', 600, now() + interval '10 minutes',
               now() - interval '1 hour' + $3 * interval '1 millisecond', now())`,
      [`agent${n % 4}`, { n }, n],
    );

  const applied = await migrate(pool);
  assert.ok(applied.length > 1, applied.join());
  // 0009: the rows are numbered in creation order, and new rows come after them.
  const seqs = await pool.query<{ n: number; seq: string }>(
    "SELECT (body->>'n')::int AS n, seq::text FROM message ORDER BY seq",
  );
  assert.deepEqual(
    seqs.rows.map((r) => r.n),
    Array.from({ length: 20 }, (_, n) => n),
  );
  await enqueueRows(pool, [
    {
      to_agent_id: 'agent1',
      channel: 'http',
      from_agent: 'alice@agents.test',
      type: 't',
      body: { n: 20 },
      status: 'delivered',
      ttl_sec: 600,
    },
  ]);
  const claimed = await claim(pool, 'agent1', 10, 30);
  assert.deepEqual(
    claimed.rows.map((r) => (r.body as { n: number }).n),
    [1, 5, 9, 13, 17, 20],
  );
  // Tables the later migrations added are reference tables (a copy on every node), not
  // tables left on the coordinator (but for the coordinator's own bookkeeping).
  const kinds = await pool.query<{ t: string; kind: string }>(
    'SELECT table_name::text AS t, citus_table_type AS kind FROM citus_tables ORDER BY 1',
  );
  const local = await pool.query<{ t: string }>(
    `SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND NOT (c.relname = ANY($1::text[]))
        AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)`,
    [[...COORDINATOR_ONLY]],
  );
  assert.deepEqual(local.rows, [], 'no table stays local');
  for (const { t: name, kind } of kinds.rows)
    assert.equal(
      kind,
      ['message', 'message_dedupe', 'message_search'].includes(name) ? 'distributed' : 'reference',
      name,
    );
  assert.deepEqual((await planCitus(pool)).problems, []);
});
