// A pool with deadlines fails a query its server never answers (a stopped backend: the
// server's statement_timeout cannot fire) between statementMs + 1.5 s and statementMs + 2 s,
// as a storage fault, and goes on with new connections; a slow query inside its deadline
// and a client idle for longer than it are left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { createPool, inTransaction } from '../../src/db/pool.js';
import { toAdmpError } from '../../src/errors.js';
import { createTestDatabase } from '../helpers/db.js';

const STATEMENT_MS = 300; // the client gives up 1.8–2.3 s after sending

async function backendPid(c: pg.PoolClient): Promise<number> {
  return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

/** Backends stopped now: continued by the cleanup too, should `fn` never end (the test's timeout). */
const stoppedPids = new Set<number>();

/** Runs `fn` with the backend of `pid` stopped, and lets it go on afterwards. */
async function stopped<T>(pid: number, fn: () => Promise<T>): Promise<T> {
  process.kill(pid, 'SIGSTOP');
  stoppedPids.add(pid);
  try {
    return await fn();
  } finally {
    process.kill(pid, 'SIGCONT');
    stoppedPids.delete(pid);
  }
}

async function timed(p: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const t0 = performance.now();
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, ms: performance.now() - t0 };
}

// Without the guard the query would wait for ever: the timeout turns that into a failure.
test(
  'a query the server never answers fails by itself within the deadline, as a storage fault',
  { timeout: 60_000 },
  async (t) => {
    const db = await createTestDatabase();
    const pool = createPool(db.url, 2, { statementMs: STATEMENT_MS, lockMs: 200 });
    t.after(async () => {
      for (const pid of stoppedPids) process.kill(pid, 'SIGCONT');
      await pool.end();
      await db.drop();
    });

    await t.test('a checked-out client: its query and the one queued behind it', async () => {
      const c = await pool.connect();
      const pid = await backendPid(c);
      const [first, queued] = await stopped(pid, () =>
        Promise.all([timed(c.query('SELECT 1')), timed(c.query('SELECT 2'))]),
      );
      c.release(first.err as Error);
      for (const r of [first, queued]) {
        assert.match(String(r.err), /Query read timeout/);
        assert.equal(toAdmpError(r.err).code, 'storage_unavailable');
      }
      assert.ok(
        first.ms >= STATEMENT_MS + 1400 && first.ms < STATEMENT_MS + 2400,
        `failed after ${first.ms.toFixed(0)} ms`,
      );
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the pool goes on with a new connection');
    });

    await t.test('pool.query and a transaction', async () => {
      const c = await pool.connect();
      const pid = await backendPid(c);
      c.release();
      const [direct, tx] = await stopped(pid, async () => {
        // The pool hands out its idle clients most recently used first: the stopped one.
        const direct = await timed(pool.query('SELECT 1'));
        const other = await pool.connect();
        const otherPid = await backendPid(other);
        other.release();
        const tx = await stopped(otherPid, () => timed(inTransaction(pool, (client) => client.query('SELECT 1'))));
        return [direct, tx];
      });
      assert.match(String(direct.err), /Query read timeout/);
      assert.match(String(tx.err), /Query read timeout/);
      assert.ok(direct.ms < STATEMENT_MS + 2400, `failed after ${direct.ms.toFixed(0)} ms`);
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
    });

    await t.test('a slow query inside the deadline, and a client idle for longer, are left alone', async () => {
      const slow = createPool(db.url, 1, { statementMs: 1500, lockMs: 200 });
      try {
        const c = await slow.connect();
        try {
          const pid = await backendPid(c);
          await sleep(3800); // idle past the watchdog's limit (1.5 s + 2 s − 0.5 s)
          assert.equal((await c.query('SELECT 1 AS one, pg_sleep(1.2)')).rows[0].one, 1);
          assert.equal(await backendPid(c), pid, 'the same connection');
        } finally {
          c.release();
        }
      } finally {
        await slow.end();
      }
    });
  },
);
