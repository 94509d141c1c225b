// The queue semantics through the HTTP API: leases, concurrency, redelivery,
// dead letters, idempotency, long polling, reply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestAgent, type TestApi } from '../helpers/api.js';
import { enqueueRows } from '../../src/db/enqueue.js';
import { sweepExpired } from '../../src/db/sweeps.js';
import { REDRIVE_BATCH } from '../../src/db/status.js';

async function send(
  api: TestApi,
  from: TestAgent,
  payload: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  return api.core.app.inject({ method: 'POST', url: '/v1/messages', headers: { ...from.auth, ...headers }, payload });
}
async function pull(api: TestApi, who: TestAgent, body: Record<string, unknown> = { max: 10 }) {
  const r = await api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: who.auth, payload: body });
  assert.equal(r.statusCode, 200, r.body);
  return r.json().messages as {
    id: string;
    lease_id: string;
    attempts: number;
    body: unknown;
    correlation_id: string | null;
    from: string;
    type: string;
  }[];
}
const post = (api: TestApi, who: TestAgent, url: string, payload: unknown) =>
  api.core.app.inject({ method: 'POST', url, headers: who.auth, payload: payload as object });

// Time moved in the database instead of waited out: a message's lease end or expiry is
// checked against what the request asked for, then put just into the past.
/** Seconds from now to the message's `column` (lease_until, expires_at). */
async function secondsLeft(api: TestApi, id: string, column: 'lease_until' | 'expires_at'): Promise<number> {
  const { rows } = await api.db.pool.query(
    `SELECT extract(epoch FROM ${column} - now())::float AS s FROM message WHERE id = $1`,
    [id],
  );
  return rows[0].s as number;
}
/**
 * Asserts that `column` is `sec` seconds after the request (at most; a loaded machine may
 * have spent up to 3 s since), then moves it to just now unless the sweeper was quicker.
 */
async function runOut(api: TestApi, id: string, column: 'lease_until' | 'expires_at', sec: number): Promise<void> {
  const left = await secondsLeft(api, id, column);
  assert.ok(left > sec - 3 && left <= sec, `${column} is ${sec} s after the request (${left} s left)`);
  await api.db.pool.query(
    `UPDATE message SET ${column} = now() - interval '1 ms' WHERE id = $1 AND ${column} > now()`,
    [id],
  );
}
/** The message's status, once the sweeper (every 100 ms here) has had its turn. */
async function statusOnceSwept(api: TestApi, who: TestAgent, id: string, want: string) {
  for (let i = 0; ; i++) {
    const st = await api.core.app.inject({ url: `/v1/messages/${id}`, headers: who.auth });
    if (st.json().status === want || i === 100) return st.json();
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('send, pull with a lease, ack; status shows the history to sender and recipient only', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b, c] = [await api.agent('alice'), await api.agent('bob'), await api.agent('carol')];

  const sent = await send(api, a, {
    to: b.address,
    type: 'task.request',
    subject: 'hi',
    body: { n: 1 },
    correlation_id: 'c-1',
  });
  assert.equal(sent.statusCode, 201);
  const { id, status } = sent.json();
  assert.equal(status, 'delivered');

  const [m] = await pull(api, b, { max: 5, visibility_timeout: 30 });
  assert.equal(m!.id, id);
  assert.equal(m!.from, a.address);
  assert.deepEqual(m!.body, { n: 1 });
  assert.equal(m!.attempts, 1);
  assert.equal((await pull(api, b)).length, 0, 'a leased message is not handed out twice');

  const acked = await post(api, b, `/v1/messages/${id}/ack`, { lease_id: m!.lease_id });
  assert.equal(acked.statusCode, 200, acked.body);

  for (const who of [a, b]) {
    const st = await api.core.app.inject({ url: `/v1/messages/${id}`, headers: who.auth });
    assert.equal(st.statusCode, 200);
    assert.equal(st.json().status, 'acked');
    assert.deepEqual(
      st.json().delivery_log.map((e: { event: string }) => e.event),
      ['delivered', 'acked'],
    );
  }
  const other = await api.core.app.inject({ url: `/v1/messages/${id}`, headers: c.auth });
  assert.equal(other.statusCode, 403);
  const depth = await api.core.app.inject({ url: '/v1/inbox', headers: b.auth });
  assert.equal(depth.json().depth.acked, 1);
});

test('8 concurrent consumers never hold the same message at once; every message is acked exactly once', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('producer'), await api.agent('worker')];
  const N = 400;
  await Promise.all(Array.from({ length: N }, (_, i) => send(api, a, { to: b.address, type: 'job', body: { i } })));

  const held = new Set<string>();
  const acked: string[] = [];
  let overlap = 0;
  const consumer = async () => {
    for (;;) {
      const msgs = await pull(api, b, { max: 7, visibility_timeout: 60 });
      if (msgs.length === 0) return;
      for (const m of msgs) {
        if (held.has(m.id)) overlap++;
        held.add(m.id);
      }
      await new Promise((r) => setImmediate(r));
      const r = await post(api, b, '/v1/messages/ack', {
        items: msgs.map((m) => ({ id: m.id, lease_id: m.lease_id })),
      });
      assert.equal(r.statusCode, 200, r.body);
      for (const x of r.json().results) {
        assert.equal(x.outcome, 'acked');
        acked.push(x.id);
      }
      for (const m of msgs) held.delete(m.id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, consumer));
  assert.equal(overlap, 0);
  assert.equal(acked.length, N);
  assert.equal(new Set(acked).size, N);
  const { rows } = await api.db.pool.query(
    "SELECT count(*)::int AS n FROM message WHERE status = 'acked' AND attempts = 1",
  );
  assert.equal(rows[0].n, N);
});

test('a pull may carry the acks of the previous batch: one call per batch, each ack answered', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('a-next'), await api.agent('b-next')];
  for (let i = 0; i < 5; i++)
    assert.equal((await send(api, a, { to: b.address, type: 'seq', body: { i } })).statusCode, 201);
  const first = await pull(api, b, { max: 2 });
  const pullAcking = (ack: unknown) =>
    api.core.app.inject({ method: 'POST', url: '/v1/inbox/pull', headers: b.auth, payload: { max: 2, ack } });

  const r = await pullAcking(first.map((m) => ({ id: m.id, lease_id: m.lease_id })));
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(
    r.json().acked,
    first.map((m) => ({ id: m.id, outcome: 'acked' })),
  );
  assert.deepEqual(
    r.json().messages.map((m: { body: { i: number } }) => m.body.i),
    [2, 3],
    'the next batch, in order',
  );
  const { rows } = await api.db.pool.query("SELECT count(*)::int AS n FROM message WHERE status = 'acked'");
  assert.equal(rows[0].n, 2);

  // An ack that is refused is reported and changes nothing; the pull still happens.
  const second = r.json().messages as { id: string; lease_id: string }[];
  const stale = await pullAcking([
    { id: second[0]!.id, lease_id: first[0]!.lease_id },
    { id: second[1]!.id, lease_id: second[1]!.lease_id },
  ]);
  assert.equal(stale.statusCode, 200, stale.body);
  assert.deepEqual(
    stale.json().acked.map((x: { outcome: string }) => x.outcome),
    ['lease_conflict', 'acked'],
  );
  assert.deepEqual(
    stale.json().messages.map((m: { body: { i: number } }) => m.body.i),
    [4],
  );
  const { rows: leased } = await api.db.pool.query('SELECT status FROM message WHERE id = $1', [second[0]!.id]);
  assert.equal(leased[0].status, 'leased');
  // A pull without acks answers without `acked`.
  assert.equal('acked' in (await pullAcking(undefined)).json(), false);
});

test('an ack carried by a pull is done once and in the same transaction: a message back in the inbox is acked, not handed out again', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('a-back'), await api.agent('b-back')];
  assert.equal((await send(api, a, { to: b.address, type: 'seq', body: { i: 0 } })).statusCode, 201);
  const [m] = await pull(api, b, { max: 1 });
  // The lease runs out and the sweeper returns the message to the inbox; nobody re-leases it.
  await api.db.pool.query("UPDATE message SET lease_until = now() - interval '1 second' WHERE id = $1", [m!.id]);
  assert.equal((await sweepExpired(api.db.pool, 5)).returned, 1);

  const started = Date.now();
  const r = await api.core.app.inject({
    method: 'POST',
    url: '/v1/inbox/pull',
    headers: b.auth,
    payload: { max: 10, wait: 1, ack: [{ id: m!.id, lease_id: m!.lease_id }] },
  });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().acked, [{ id: m!.id, outcome: 'acked' }]);
  assert.deepEqual(r.json().messages, [], 'the acked message is not claimed by the pull that acked it');
  assert.ok(Date.now() - started >= 900, 'with nothing left the pull long-polls after its acks');
  const { rows } = await api.db.pool.query('SELECT status, attempts FROM message WHERE id = $1', [m!.id]);
  assert.deepEqual(rows[0], { status: 'acked', attempts: 1 });
});

test('pull is per-agent FIFO', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('a1'), await api.agent('b1')];
  for (let i = 0; i < 5; i++)
    assert.equal((await send(api, a, { to: b.address, type: 'seq', body: { i } })).statusCode, 201);
  assert.deepEqual(
    (await pull(api, b, { max: 10 })).map((m) => (m.body as { i: number }).i),
    [0, 1, 2, 3, 4],
  );
});

test('FIFO comes from the database: one batch keeps its order, and 300 fast sends come out as sent', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b, c] = [await api.agent('a9'), await api.agent('b9'), await api.agent('c9')];
  // One enqueue batch is one transaction: every row has the same created_at.
  const batch = Array.from({ length: 50 }, (_, i) => ({
    to_agent_id: c.id,
    channel: 'http' as const,
    from_agent: a.address,
    type: 'seq',
    body: { i },
    status: 'delivered' as const,
    ttl_sec: 600,
  }));
  await enqueueRows(api.db.pool, batch);
  const inBatch = await pull(api, c, { max: 100 });
  assert.deepEqual(
    inBatch.map((m) => (m.body as { i: number }).i),
    batch.map((_, i) => i),
  );
  for (let i = 0; i < 300; i++)
    assert.equal((await send(api, a, { to: b.address, type: 'seq', body: { i } })).statusCode, 201);
  const got: number[] = [];
  for (let page = 0; page < 3; page++)
    got.push(...(await pull(api, b, { max: 100 })).map((m) => (m.body as { i: number }).i));
  assert.deepEqual(
    got,
    Array.from({ length: 300 }, (_, i) => i),
  );
});

test('an unacked message comes back after its lease and goes dead after max_attempts; redrive requeues it', async (t) => {
  const api = await startTestApi({ ADMP_MAX_ATTEMPTS: '3', ADMP_RECLAIM_INTERVAL_MS: '100' });
  t.after(() => api.close());
  const [a, b] = [await api.agent('a2'), await api.agent('b2')];
  const { id } = (await send(api, a, { to: b.address, type: 't', body: {} })).json();
  const leases: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [m] = await pull(api, b, { max: 1, visibility_timeout: 1, wait: 5 });
    assert.equal(m?.id, id, `attempt ${attempt} gets the message back`);
    assert.equal(m!.attempts, attempt);
    leases.push(m!.lease_id);
    if (attempt < 3) await runOut(api, id, 'lease_until', 1);
  }
  // The first lease is stale now: refused with 409, and nothing changes.
  const stale = await post(api, b, `/v1/messages/${id}/ack`, { lease_id: leases[0] });
  assert.equal(stale.statusCode, 409);
  assert.equal(stale.json().error.code, 'lease_conflict');

  await runOut(api, id, 'lease_until', 1);
  assert.equal((await statusOnceSwept(api, b, id, 'dead')).status, 'dead');
  assert.equal((await pull(api, b, { max: 1 })).length, 0);
  const dead = await api.core.app.inject({ url: '/v1/dead', headers: b.auth });
  const [d] = dead.json().messages;
  assert.equal(d.id, id);
  assert.equal(d.status, 'dead');
  assert.deepEqual(d.delivery_log.at(-1).reason, 'max_attempts');

  const rd = await post(api, b, '/v1/dead/redrive', { ids: [id] });
  assert.deepEqual(rd.json().redriven, [id]);
  const [again] = await pull(api, b, { max: 1 });
  assert.equal(again?.id, id);
  assert.equal(again!.attempts, 1);
});

test("redrive all: more dead letters than one batch, all requeued once, no one else's", async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const b = await api.agent('b9');
  const n = REDRIVE_BATCH + 5;
  // One enqueue: every letter has the same created_at, so the batches are told apart by id.
  await api.db.pool.query(
    `SELECT count(*) FROM enqueue_message((
       SELECT jsonb_agg(jsonb_build_object('to_agent_id', CASE WHEN g <= $1 THEN 'b9' ELSE 'other' END,
                'channel', 'http', 'status', 'delivered', 'from_agent', 'x@agents.test', 'type', 't',
                'ttl_sec', 3600, 'body', '{}'::jsonb))
         FROM generate_series(1, $1 + 3) g))`,
    [n],
  );
  await api.db.pool.query("UPDATE message SET status = 'dead' WHERE to_agent_id IN ('b9', 'other')");
  const rd = await post(api, b, '/v1/dead/redrive', { all: true });
  assert.equal(rd.statusCode, 200, rd.body);
  const ids: string[] = rd.json().redriven;
  assert.equal(ids.length, n);
  assert.equal(new Set(ids).size, n);
  const { rows } = await api.db.pool.query<{ to_agent_id: string; status: string; n: number }>(
    'SELECT to_agent_id, status::text, count(*)::int AS n FROM message GROUP BY 1, 2 ORDER BY 1',
  );
  assert.deepEqual(rows, [
    { to_agent_id: 'b9', status: 'delivered', n },
    { to_agent_id: 'other', status: 'dead', n: 3 },
  ]);
  assert.deepEqual((await post(api, b, '/v1/dead/redrive', { all: true })).json().redriven, []);
});

test('nack extends a lease, or returns the message after a delay', async (t) => {
  const api = await startTestApi({ ADMP_RECLAIM_INTERVAL_MS: '100' });
  t.after(() => api.close());
  const [a, b] = [await api.agent('a3'), await api.agent('b3')];
  const { id } = (await send(api, a, { to: b.address, type: 't', body: {} })).json();
  const [m] = await pull(api, b, { max: 1, visibility_timeout: 1 });
  const ext = await post(api, b, `/v1/messages/${id}/nack`, { lease_id: m!.lease_id, extend_sec: 60 });
  assert.equal(ext.statusCode, 200);
  assert.equal(ext.json().status, 'leased');
  // Past the end of the original 1 s lease (1.3 s of lease time moved): the 60 s one holds.
  const left = await secondsLeft(api, id, 'lease_until');
  assert.ok(left > 57 && left <= 60, `the lease ends 60 s after the nack (${left} s left)`);
  // The new time is computed here: Citus refuses a column inside a STABLE function in an UPDATE.
  const { rows } = await api.db.pool.query<{ at: Date }>('SELECT lease_until AS at FROM message WHERE id = $1', [id]);
  await api.db.pool.query('UPDATE message SET lease_until = $2 WHERE id = $1', [
    id,
    new Date(rows[0]!.at.getTime() - 1300),
  ]);
  assert.equal(
    (await pull(api, b)).length,
    0,
    'the extended lease still holds after the original one would have expired',
  );
  const rel = await post(api, b, `/v1/messages/${id}/nack`, { lease_id: m!.lease_id, delay_sec: 1 });
  assert.equal(rel.json().status, 'delivered');
  assert.equal((await pull(api, b)).length, 0, 'not visible during the delay');
  const [back] = await pull(api, b, { max: 1, wait: 3 });
  assert.equal(back?.id, id);
  const both = await post(api, b, `/v1/messages/${id}/nack`, { lease_id: back!.lease_id, delay_sec: 1, extend_sec: 1 });
  assert.equal(both.statusCode, 400);
});

test('expired TTL sends a message to dead', async (t) => {
  const api = await startTestApi({ ADMP_RECLAIM_INTERVAL_MS: '100' });
  t.after(() => api.close());
  const [a, b] = [await api.agent('a4'), await api.agent('b4')];
  const { id } = (await send(api, a, { to: b.address, type: 't', body: {}, ttl_sec: 1 })).json();
  await runOut(api, id, 'expires_at', 1);
  const st = await statusOnceSwept(api, a, id, 'dead');
  assert.equal((await pull(api, b)).length, 0);
  assert.equal(st.status, 'dead');
  assert.equal(st.delivery_log.at(-1).reason, 'ttl_expired');
});

test('idempotent send returns one row; a reused key with another body is a conflict', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b, c] = [await api.agent('a5'), await api.agent('b5'), await api.agent('c5')];
  const payload = { to: b.address, type: 't', body: { x: 1 } };
  const first = await send(api, a, payload, { 'idempotency-key': 'k-1' });
  const replays = await Promise.all(
    Array.from({ length: 5 }, () => send(api, a, payload, { 'idempotency-key': 'k-1' })),
  );
  assert.equal(first.statusCode, 201);
  for (const r of replays) {
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().id, first.json().id);
  }
  // Another sender's equal key is its own message: keys are scoped per sender.
  const fromC = await send(api, c, payload, { 'idempotency-key': 'k-1' });
  assert.equal(fromC.statusCode, 201);
  assert.notEqual(fromC.json().id, first.json().id);
  const clash = await send(api, a, { ...payload, body: { x: 2 } }, { 'idempotency-key': 'k-1' });
  assert.equal(clash.statusCode, 409);
  assert.equal(clash.json().error.code, 'idempotency_conflict');
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 2);
});

test('fingerprint dedupe: the same source fingerprint for the same recipient is one row', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  await api.agent('b6');
  const item = {
    to_agent_id: 'b6',
    channel: 'smtp' as const,
    from_agent: 'x@agents.partner.test',
    type: 't',
    body: {},
    status: 'delivered' as const,
    ttl_sec: 60,
    source_fingerprint: 'ab'.repeat(32),
  };
  const results = await Promise.all(Array.from({ length: 6 }, () => api.core.enqueuer.enqueue(item)));
  assert.equal(new Set(results.map((r) => r.id)).size, 1);
  assert.equal(results.filter((r) => !r.duplicate).length, 1);
  // Separate transactions racing for one key: each waits for the holder and gets its id.
  const racing = { ...item, source_fingerprint: 'cd'.repeat(32) };
  const raced = await Promise.all(Array.from({ length: 6 }, () => enqueueRows(api.db.pool, [racing])));
  assert.equal(new Set(raced.map(([r]) => r!.id)).size, 1);
  assert.equal(raced.filter(([r]) => !r!.duplicate).length, 1);
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 2);
});

test('a long poll is woken by a send, not by its wait running out', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('a7'), await api.agent('b7')];
  const polling = pull(api, b, { max: 1, wait: 10 });
  await new Promise((r) => setTimeout(r, 300));
  const sentAt = performance.now();
  await send(api, a, { to: b.address, type: 't', body: {} });
  const got = await polling;
  const latency = performance.now() - sentAt;
  assert.equal(got.length, 1);
  // Woken by the NOTIFY: far sooner than its 10 s wait (how much sooner depends on the machine's load).
  assert.ok(latency < 2500, `long poll woke ${latency.toFixed(1)} ms after the send`);
  const empty = performance.now();
  assert.equal((await pull(api, b, { max: 1, wait: 1 })).length, 0);
  assert.ok(performance.now() - empty >= 950, 'an empty long poll waits for its full time');
});

test('reply goes to the original sender with its correlation id, and acks the original in the same transaction', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const [a, b] = [await api.agent('a8'), await api.agent('b8')];
  const { id } = (await send(api, a, { to: b.address, type: 'task.request', body: { q: 1 } })).json();
  const [m] = await pull(api, b);
  const r = await post(api, b, `/v1/messages/${id}/reply`, {
    lease_id: m!.lease_id,
    type: 'task.result',
    body: { a: 2 },
  });
  assert.equal(r.statusCode, 201, r.body);
  const [answer] = await pull(api, a);
  assert.equal(answer!.correlation_id, id, 'no correlation id on the original: the reply correlates to its id');
  assert.equal(answer!.type, 'task.result');
  const st = (await api.core.app.inject({ url: `/v1/messages/${id}`, headers: a.auth })).json();
  assert.equal(st.status, 'acked');
  assert.equal(st.reply, r.json().id);
  const again = await post(api, b, `/v1/messages/${id}/reply`, { type: 'task.result', body: {} });
  assert.equal(again.statusCode, 409);
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 2, 'the refused second reply left no row');
});
