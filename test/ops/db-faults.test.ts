// Database faults met by an in-process core: a backend terminated inside each kind of
// transaction the code opens (no crash, a 503, and the pool recovers), the long-poll
// wake-up connection (exactly one, reconnected, polling while it is down, visible in
// /readyz and a metric), deadlines (a held table lock or a frozen backend answers 503
// within the budget; a long poll's own wait is not a stall), and the outage log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createPool, fitIdleTimeout, inTransaction } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { addAgent } from '../../src/db/agents.js';
import { toAdmpError } from '../../src/errors.js';
import { wire, type Core } from '../../src/app/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';

const admin = async <T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values: unknown[] = []) => {
  const c = new pg.Client({ connectionString: process.env.ADMP_TEST_ADMIN_URL ?? process.env.DATABASE_URL });
  await c.connect();
  try {
    return (await c.query<T>(sql, values)).rows;
  } finally {
    await c.end();
  }
};
const dbName = (db: TestDatabase) => new URL(db.url).pathname.slice(1);

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** pids of this database's backends in a state (or running a query matching `query`). */
async function backends(db: TestDatabase, where: { state?: string; query?: string } = {}): Promise<number[]> {
  const rows = await admin<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
        AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR query ~ $3)`,
    [dbName(db), where.state ?? null, where.query ?? null],
  );
  return rows.map((r) => r.pid);
}
const listeners = (db: TestDatabase) => backends(db, { query: '^LISTEN admp_inbox' });

interface Harness {
  db: TestDatabase;
  pool: pg.Pool;
  core: Core;
  lines: Record<string, unknown>[];
  agent(id: string): Promise<{ address: string; auth: { authorization: string } }>;
  call(
    who: { auth: { authorization: string } },
    method: 'GET' | 'POST',
    url: string,
    payload?: object,
  ): Promise<{ status: number; json: any; ms: number }>;
}

/**
 * A core on a fresh database with the server's own deadlines (statement and lock
 * timeouts, request budget); `listenUrl` replaces the URL of the wake-up connection.
 */
async function harness(
  t: { after(fn: () => Promise<void>): void },
  env: Record<string, string> = {},
  listenUrl?: string,
): Promise<Harness> {
  const db = await createTestDatabase();
  const config = loadConfig({
    DATABASE_URL: db.url,
    ADMP_DOMAINS: 'agents.test',
    ADMP_LOG_LEVEL: 'info',
    ADMP_PG_STATEMENT_TIMEOUT_MS: '1500',
    ADMP_PG_LOCK_TIMEOUT_MS: '500',
    ADMP_REQUEST_BUDGET_MS: '3000',
    ...env,
  });
  const pool = createPool(db.url, 8, { statementMs: config.pgStatementTimeoutMs, lockMs: config.pgLockTimeoutMs });
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(config.logLevel, {
    write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>),
  });
  const core = await wire(config, { pool, url: listenUrl ?? db.url }, log);
  await core.app.ready(); // loading the plugins is not part of any call timed below
  t.after(async () => {
    await core.stop();
    await pool.end();
    await db.drop();
  });
  return {
    db,
    pool,
    core,
    lines,
    async agent(id) {
      const a = await addAgent(db.pool, id, 'agents.test');
      return { address: `${id}@agents.test`, auth: { authorization: `Bearer ${a.token}` } };
    },
    async call(who, method, url, payload) {
      const started = performance.now();
      const r = await core.app.inject({ method, url, headers: who.auth, ...(payload ? { payload } : {}) });
      return { status: r.statusCode, json: r.json(), ms: performance.now() - started };
    },
  };
}

test('a backend terminated inside each kind of transaction: 503, no crash, and the pool recovers', async (t) => {
  const h = await harness(t);
  const [alice, bob] = [await h.agent('alice'), await h.agent('bob')];

  await t.test('the reply transaction, idle between two statements', async () => {
    const sent = await h.call(alice, 'POST', '/v1/messages', {
      to: alice.address.replace('alice', 'bob'),
      type: 't',
      body: {},
    });
    assert.equal(sent.status, 201);
    const [m] = (await h.call(bob, 'POST', '/v1/inbox/pull', { max: 1 })).json.messages;
    // The reply locks the original, then looks up its sender: hold that lookup on a
    // table lock so the reply's transaction sits idle, and end its backend there.
    const locker = new pg.Client({ connectionString: h.db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE agent IN ACCESS EXCLUSIVE MODE');
    const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const idleInReply = async () =>
      (await backends(h.db, { state: 'idle in transaction' })).filter((pid) => pid !== lockerPid);
    const reply = h.call(bob, 'POST', `/v1/messages/${m.id}/reply`, { lease_id: m.lease_id, type: 'r', body: {} });
    await until('the reply idle in its transaction', async () => (await idleInReply()).length > 0);
    await admin('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid', [await idleInReply()]);
    await sleep(200); // the client sees its connection end while nobody queries it
    await locker.query('ROLLBACK');
    await locker.end();
    const r = await reply;
    assert.equal(r.status, 503, JSON.stringify(r.json));
    assert.equal(r.json.error.code, 'storage_unavailable');
    const again = await h.call(bob, 'POST', `/v1/messages/${m.id}/reply`, {
      lease_id: m.lease_id,
      type: 'r',
      body: {},
    });
    assert.equal(again.status, 201, 'the same reply works on a fresh connection');
  });

  await t.test('any transaction on a pooled client (agents, keys), idle when its backend ends', async () => {
    const pool = createPool(h.db.url, 2);
    const err = await inTransaction(pool, async (c) => {
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await admin('SELECT pg_terminate_backend($1)', [pid]);
      await sleep(200);
      await c.query('SELECT 1');
    }).catch((e: unknown) => e);
    assert.equal(toAdmpError(err).code, 'storage_unavailable', String(err));
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the pool dropped the broken client');
    await pool.end();
  });

  await t.test("a migration's transaction, ended while it runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'admp-mig-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, '0001_slow.sql'), 'SELECT pg_sleep(30);');
    const fresh = await createTestDatabase({ migrate: false });
    t.after(() => fresh.drop());
    const pool = createPool(fresh.url, 1);
    const running = migrate(pool, `${dir}/`).catch((e: unknown) => e);
    await until('the migration running', async () => (await backends(fresh, { query: 'pg_sleep' })).length > 0);
    await admin('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid', [
      await backends(fresh, { query: 'pg_sleep' }),
    ]);
    assert.equal(toAdmpError(await running).code, 'storage_unavailable');
    await pool.end();
  });

  await t.test('statements in flight (send, pull, ack) while every backend is ended', async () => {
    const load = Array.from({ length: 200 }, (_, i) =>
      i % 2
        ? h.call(alice, 'POST', '/v1/messages', { to: 'bob@agents.test', type: 't', body: { i } })
        : h.call(bob, 'POST', '/v1/inbox/pull', { max: 5 }),
    );
    await sleep(5);
    await admin('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid', [await backends(h.db)]);
    const statuses = new Set((await Promise.all(load)).map((r) => r.status));
    for (const s of statuses) assert.ok([200, 201, 503].includes(s), `status ${s}`);
    // A pooled client whose backend just ended may still be handed out once (503); then the pool has new ones.
    await until(
      'a send works again',
      async () =>
        (await h.call(alice, 'POST', '/v1/messages', { to: 'bob@agents.test', type: 't', body: {} })).status === 201,
      5000,
    );
  });
});

test('the wake-up connection: exactly one, back after each loss, and pulls poll meanwhile', async (t) => {
  await t.test('backend terminated five times', async () => {
    const h = await harness(t);
    const [alice, bob] = [await h.agent('alice'), await h.agent('bob')];
    await until('the listener up', async () => (await listeners(h.db)).length === 1);
    for (let i = 0; i < 5; i++) {
      await admin('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid', [await listeners(h.db)]);
      await until('the listener back', async () => (await listeners(h.db)).length === 1);
    }
    await sleep(500);
    assert.equal((await listeners(h.db)).length, 1, 'one wake-up connection, not one per loss');
    assert.match(await h.core.metrics.registry.metrics(), /^admp_wakeup_listener_up 1$/m);
    // Wake-ups work again: a long poll answers right after the send, not at its end.
    const poll = h.call(bob, 'POST', '/v1/inbox/pull', { max: 1, wait: 10 });
    await sleep(200);
    await h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} });
    const r = await poll;
    assert.equal(r.json.messages.length, 1);
    assert.ok(r.ms < 1500, `the long poll took ${r.ms.toFixed(0)} ms`);
  });

  await t.test('idle_session_timeout ends idle sessions every 300 ms', async () => {
    const h = await harness(t);
    // Every session started from now on ends after 300 ms idle: the ones open now are ended to pick it up.
    await admin(`ALTER DATABASE ${dbName(h.db)} SET idle_session_timeout = '300ms'`);
    await admin('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid', [await backends(h.db)]);
    await until('the pool fitted to it', async () => {
      await fitIdleTimeout(h.pool).catch(() => undefined);
      return h.pool.options.idleTimeoutMillis === 150;
    });
    let most = 0;
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      most = Math.max(most, (await listeners(h.db)).length);
      await sleep(100);
    }
    assert.ok(most <= 1, `${most} wake-up connections at once`);
    const [alice, bob] = [await h.agent('alice'), await h.agent('bob')];
    const poll = h.call(bob, 'POST', '/v1/inbox/pull', { max: 1, wait: 10 });
    await sleep(200);
    assert.equal((await h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} })).status, 201);
    const r = await poll;
    assert.equal(r.json.messages?.length, 1, JSON.stringify(r.json));
    assert.ok(r.ms < 2500, `the long poll took ${r.ms.toFixed(0)} ms`);
  });

  await t.test('while it cannot connect: /readyz says so, the metric is 0, a long poll polls', async () => {
    const h = await harness(t, {}, `postgres://admp:admp@127.0.0.1:${await freePort()}/nothing`);
    const [alice, bob] = [await h.agent('alice'), await h.agent('bob')];
    const ready = await h.core.app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.match(ready.json().reason, /wake-up/);
    assert.match(await h.core.metrics.registry.metrics(), /^admp_wakeup_listener_up 0$/m);
    const poll = h.call(bob, 'POST', '/v1/inbox/pull', { max: 1, wait: 10 });
    await sleep(300);
    await h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} });
    const r = await poll;
    assert.equal(r.json.messages.length, 1);
    assert.ok(r.ms < 2000, `the long poll took ${r.ms.toFixed(0)} ms: it should look again every second`);
  });
});

test('deadlines: a held table lock or a frozen backend answers 503 within the budget', async (t) => {
  const h = await harness(t);
  const [alice, bob] = [await h.agent('alice'), await h.agent('bob')];
  assert.equal((await h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} })).status, 201);
  const [m] = (await h.call(bob, 'POST', '/v1/inbox/pull', { max: 1 })).json.messages;

  await t.test('LOCK TABLE message: send, pull, ack and /readyz', async () => {
    const locker = new pg.Client({ connectionString: h.db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE message IN ACCESS EXCLUSIVE MODE');
    try {
      const calls = await Promise.all([
        h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} }),
        h.call(bob, 'POST', '/v1/inbox/pull', { max: 1 }),
        h.call(bob, 'POST', `/v1/messages/${m.id}/ack`, { lease_id: m.lease_id }),
      ]);
      for (const c of calls) {
        assert.equal(c.status, 503, JSON.stringify(c.json));
        assert.ok(c.ms < 3500, `answered after ${c.ms.toFixed(0)} ms`);
      }
      const ready = await h.core.app.inject({ url: '/readyz' });
      assert.equal(ready.statusCode, 503);
      assert.match(ready.json().reason, /locked/);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    assert.equal((await h.call(bob, 'POST', `/v1/messages/${m.id}/ack`, { lease_id: m.lease_id })).status, 200);
    assert.equal((await h.core.app.inject({ url: '/readyz' })).statusCode, 200);
  });

  await t.test('a frozen backend (SIGSTOP): the client gives up by itself', async () => {
    await h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} }); // warm the pool
    const pids = await backends(h.db, { state: 'idle' });
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      const sends = await Promise.all(
        Array.from({ length: 10 }, () =>
          h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} }),
        ),
      );
      for (const s of sends) {
        assert.ok([201, 503].includes(s.status), `status ${s.status}`);
        assert.ok(s.ms < 4000, `answered after ${s.ms.toFixed(0)} ms`);
      }
      assert.ok(
        sends.some((s) => s.status === 503),
        'some send met a frozen connection',
      );
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    await until(
      'sends work again',
      async () =>
        (await h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} })).status === 201,
    );
  });

  await t.test('the request budget answers when the database deadlines are longer', async (t) => {
    const slow = await harness(t, {
      ADMP_PG_STATEMENT_TIMEOUT_MS: '20000',
      ADMP_PG_LOCK_TIMEOUT_MS: '20000',
      ADMP_REQUEST_BUDGET_MS: '800',
    });
    const carol = await slow.agent('carol');
    const locker = new pg.Client({ connectionString: slow.db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE message IN ACCESS EXCLUSIVE MODE');
    try {
      const r = await slow.call(carol, 'POST', '/v1/messages', { to: carol.address, type: 't', body: {} });
      assert.equal(r.status, 503, JSON.stringify(r.json));
      assert.equal(r.json.error.code, 'timeout');
      assert.ok(r.ms >= 800 && r.ms < 2500, `answered after ${r.ms.toFixed(0)} ms`);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });

  await t.test("a long poll's own wait is longer than the budget and still answers 200", async () => {
    while ((await h.call(bob, 'POST', '/v1/inbox/pull', { max: 100 })).json.messages.length > 0);
    const r = await h.call(bob, 'POST', '/v1/inbox/pull', { max: 1, wait: 5, visibility_timeout: 60 });
    assert.equal(r.status, 200);
    assert.ok(r.ms >= 3000, `${r.ms}`);
  });
});

test('an outage is logged once when it starts and once when it ends, with counts; no stack per 503', async (t) => {
  const h = await harness(t);
  const [alice, bob] = [await h.agent('alice'), await h.agent('bob')];
  await h.db.block();
  const answers = await Promise.all(
    Array.from({ length: 30 }, () => h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} })),
  );
  for (const a of answers) assert.equal(a.status, 503);
  await h.db.unblock();
  await until(
    'a send works',
    async () => (await h.call(alice, 'POST', '/v1/messages', { to: bob.address, type: 't', body: {} })).status === 201,
  );
  const storage = h.lines.filter((l) => l.event === 'storage');
  assert.deepEqual(
    storage.map((l) => l.state),
    ['down', 'up'],
    JSON.stringify(storage),
  );
  assert.ok(((storage[1]!.faults as { http: number }).http ?? 0) >= 30, JSON.stringify(storage[1]));
  assert.equal(h.lines.filter((l) => l.msg === 'request failed').length, 0, 'no error line per request');
  assert.equal(h.lines.filter((l) => JSON.stringify(l).includes('"stack"') && l.event !== 'storage').length, 0);
});
