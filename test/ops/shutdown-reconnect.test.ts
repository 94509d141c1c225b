// core.stop() meeting the long-poll wake-up connection (LISTEN, src/db/listen.ts) in the middle
// of a reconnect: the connection is lost just before shutdown, and stop() comes during the pause
// before the next attempt or while that attempt's socket is still connecting. Shutdown (SIGTERM,
// a test's cleanup) waits for it before it stops the jobs and closes the pool, so it must end.
// Also when the database stopped answering: the connection's polite end would wait forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { LISTEN_BACKOFF, listen } from '../../src/db/listen.js';
import { wire, type Core } from '../../src/app/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { freezingRelay } from '../helpers/freezing-relay.js';

/** No request is in flight here, so no grace period applies: a stop takes well under a second. */
const STOP_BOUND_MS = 15_000;

const admin = async (sql: string, values: unknown[] = []) => {
  const c = new pg.Client({ connectionString: process.env.ADMP_TEST_ADMIN_URL ?? process.env.DATABASE_URL });
  await c.connect();
  try {
    return (await c.query(sql, values)).rows;
  } finally {
    await c.end();
  }
};

/** pids of the database's wake-up connections. */
const listeners = async (db: TestDatabase): Promise<number[]> =>
  (
    await admin(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query ~ '^LISTEN admp_inbox'`, [
      new URL(db.url).pathname.slice(1),
    ])
  ).map((r: { pid: number }) => r.pid);

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

for (const [when, delayMs] of [
  ['during the pause before the next attempt', 0],
  // The first pause after a loss is LISTEN_BACKOFF.firstMs. A timer of that length armed just
  // after the listener armed its pause fires right after it, in the same timers phase: the new
  // connection's socket has been told to connect, and only the next poll phase would see it
  // connected. (Before the fix, pg never settled that connect and stop() waited forever.)
  ['while the next attempt is still connecting', LISTEN_BACKOFF.firstMs],
] as const) {
  test(`stop() ends when the wake-up connection was lost just before: stop ${when}`, async (t) => {
    const db = await createTestDatabase();
    t.after(() => db.drop());
    let core!: Core;
    let armed = false;
    let stopping: Promise<void> | undefined;
    // The "connection lost" line is logged synchronously just before the listener arms its
    // pause; a microtask later that pause is armed, and so is the stop's timer, after it.
    const log = createLogger('info', {
      write(line: string) {
        const l = JSON.parse(line) as { event?: string; state?: string };
        if (armed || l.event !== 'wakeup_listener' || l.state !== 'down') return;
        armed = true;
        queueMicrotask(() => setTimeout(() => (stopping = core.stop()), delayMs));
      },
    });
    const config = loadConfig({ DATABASE_URL: db.url, ADMP_DOMAINS: 'agents.test', ADMP_LOG_LEVEL: 'info' });
    core = await wire(config, db, log);
    await until('the wake-up connection up', async () => (await listeners(db)).length === 1);
    await admin('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid', [await listeners(db)]);
    await until('stop() called', () => stopping !== undefined);
    const outcome = await Promise.race([
      stopping!.then(() => 'stopped'),
      sleep(STOP_BOUND_MS, 'still stopping', { ref: false }),
    ]);
    assert.equal(outcome, 'stopped', `core.stop() did not end within ${STOP_BOUND_MS} ms`);
    // And no attempt outlived it: no wake-up connection came back after the stop.
    await sleep(LISTEN_BACKOFF.maxMs);
    assert.deepEqual(await listeners(db), []);
  });
}

test('close() ends when the database stopped answering the listening connection', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const relay = await freezingRelay(db.url);
  t.after(() => relay.close());
  const listener = listen(relay.url, 'admp_inbox', { onNotify: () => undefined, onState: () => undefined });
  await listener.settled;
  assert.equal(listener.up, true);
  relay.freeze();
  const started = performance.now();
  const outcome = await Promise.race([
    listener.close().then(() => 'closed'),
    sleep(STOP_BOUND_MS, 'still closing', { ref: false }),
  ]);
  assert.equal(outcome, 'closed');
  assert.ok(performance.now() - started < 3000, `close() took ${(performance.now() - started).toFixed(0)} ms`);
});
