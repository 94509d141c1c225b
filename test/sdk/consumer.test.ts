// consume() against a real server: every message handled once and acked on the next
// pull, crashing handlers retried with a delay then dead-lettered, slow handlers kept
// leased by heartbeats (no rival consumer sees their message), and both ways to stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmpClient, type AdmpApiError, type Credentials } from '../../src/sdk/index.js';
import { startSdkServer } from './server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A client whose HTTP calls are counted by path. */
function countingClient(url: string, credentials: Credentials) {
  const calls = new Map<string, number>();
  const fetchCounted: typeof fetch = (input, init) => {
    const path = new URL(String(input)).pathname.replace(/[0-9a-f-]{36}/, ':id');
    calls.set(path, (calls.get(path) ?? 0) + 1);
    return fetch(input, init);
  };
  return { client: new AdmpClient({ baseUrl: url, credentials, fetch: fetchCounted }), calls };
}

test('every message is handled once, never twice at a time, and its ack rides on the next pull', async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('producer'), await s.api.agent('worker')];
  const producer = new AdmpClient({ baseUrl: s.url, credentials: { token: a.token } });
  const { client, calls } = countingClient(s.url, { token: b.token });
  const N = 60;
  await Promise.all(Array.from({ length: N }, (_, i) => producer.send({ to: b.address, type: 'job', body: { i } })));

  const handled = new Map<number, number>();
  let running = 0;
  let most = 0;
  const errors: unknown[] = [];
  const consumer = client.consume(
    async (m) => {
      running++;
      most = Math.max(most, running);
      await sleep(5);
      const i = (m.body as { i: number }).i;
      handled.set(i, (handled.get(i) ?? 0) + 1);
      running--;
    },
    { concurrency: 5, visibilityTimeout: 30, ackFlushMs: 60_000, onError: (e) => errors.push(e) },
  );
  await until('all handled', () => handled.size === N);
  await consumer.stop();
  assert.deepEqual(errors, []);
  assert.ok([...handled.values()].every((n) => n === 1));
  assert.ok(most <= 5 && most > 1, `concurrency bound held (most at once: ${most})`);
  assert.equal((await producer.inbox()).depth.acked, 0);
  const depth = (await client.inbox()).depth;
  assert.equal(depth.acked, N);
  assert.equal(depth.leased + depth.delivered, 0);
  assert.ok((calls.get('/v1/messages/ack') ?? 0) <= 1, 'acks went with the pulls (one batch ack at stop at most)');
  assert.equal(calls.get('/v1/messages/:id/ack'), undefined);
});

test('a crashing handler: released with a delay and retried, a poison message ends dead and can be redriven', async (t) => {
  const s = await startSdkServer({ ADMP_MAX_ATTEMPTS: '3' });
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('producer'), await s.api.agent('worker')];
  const producer = new AdmpClient({ baseUrl: s.url, credentials: { token: a.token } });
  const worker = new AdmpClient({ baseUrl: s.url, credentials: { token: b.token } });
  for (let i = 0; i < 10; i++) await producer.send({ to: b.address, type: 'job', body: { i } });
  const poison = await producer.send({ to: b.address, type: 'job', body: { poison: true } });

  const done = new Set<number>();
  const attemptsSeen: number[] = [];
  const failures: string[] = [];
  const delays: number[] = [];
  const consumer = worker.consume(
    (m) => {
      const body = m.body as { i?: number; poison?: boolean };
      attemptsSeen.push(m.attempts);
      if (body.poison) throw new Error('poison');
      if (body.i! % 2 === 0 && m.attempts === 1) throw new Error(`first try of ${body.i} fails`);
      done.add(body.i!);
    },
    {
      concurrency: 3,
      retryDelaySec: (attempts) => (delays.push(attempts), 0),
      onError: (e) => failures.push((e as Error).message),
    },
  );
  await until('all done and the poison dead', async () => {
    if (done.size < 10) return false;
    return (await worker.deadLetters()).length === 1;
  });
  await consumer.stop();
  assert.equal(failures.filter((f) => f.startsWith('first try')).length, 5);
  assert.equal(
    failures.filter((f) => f === 'poison').length,
    3,
    'the poison message was tried ADMP_MAX_ATTEMPTS times',
  );
  assert.ok(delays.includes(1) && delays.includes(2), 'the retry delay is asked with the attempt count');
  const dead = await worker.deadLetters();
  assert.equal(dead[0]!.id, poison.id);
  assert.equal(dead[0]!.attempts, 3);
  assert.deepEqual(await worker.redrive('all'), { redriven: [poison.id] });
  assert.equal((await worker.inbox()).depth.acked, 10);
});

test('a slow handler keeps its lease by heartbeats: a rival consumer never gets the message while it runs', async (t) => {
  const s = await startSdkServer({ ADMP_RECLAIM_INTERVAL_MS: '100' });
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('producer'), await s.api.agent('worker')];
  const producer = new AdmpClient({ baseUrl: s.url, credentials: { token: a.token } });
  const worker = new AdmpClient({ baseUrl: s.url, credentials: { token: b.token } });
  const rival = new AdmpClient({ baseUrl: s.url, credentials: { token: b.token } });
  const { id } = await producer.send({ to: b.address, type: 'job', body: 'slow' });

  let started = false;
  let finished = false;
  const consumer = worker.consume(
    async () => {
      started = true;
      await sleep(3500); // 3.5 × the 1 s visibility timeout
      finished = true;
    },
    { concurrency: 1, visibilityTimeout: 1 },
  );
  await until('the handler started', () => started);
  let rivalGot = 0;
  while (!finished) {
    rivalGot += (await rival.pull({ max: 10, visibility_timeout: 30 })).messages.length;
    await sleep(50);
  }
  await consumer.stop();
  assert.equal(rivalGot, 0, 'nobody else got the message while its handler ran');
  const st = await producer.status(id);
  assert.equal(st.status, 'acked');
  assert.equal(st.attempts, 1);
  const extended = st.delivery_log.filter((e) => e.event === 'extended').length;
  assert.ok(extended >= 6, `heartbeats every third of the timeout (${extended} extensions)`);
});

test('stop lets running handlers finish and acks them, or past its deadline releases their messages', async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('producer'), await s.api.agent('worker')];
  const producer = new AdmpClient({ baseUrl: s.url, credentials: { token: a.token } });
  const worker = new AdmpClient({ baseUrl: s.url, credentials: { token: b.token } });

  const first = await producer.send({ to: b.address, type: 'job', body: 'finishes' });
  let started = false;
  const graceful = worker.consume(
    async () => {
      started = true;
      await sleep(800);
    },
    { concurrency: 1 },
  );
  await until('started', () => started);
  await graceful.stop();
  assert.equal((await producer.status(first.id)).status, 'acked', 'stop waited for the handler and sent its ack');

  const second = await producer.send({ to: b.address, type: 'job', body: 'hangs' });
  let signal: AbortSignal | undefined;
  const stuck = worker.consume(
    async (_m, ctx) => {
      signal = ctx.signal;
      await sleep(5000);
    },
    { concurrency: 1, visibilityTimeout: 60 },
  );
  await until('started', () => signal !== undefined);
  const stopping = Date.now();
  await stuck.stop({ timeoutMs: 300 });
  assert.ok(Date.now() - stopping < 3000, 'stop kept its deadline');
  assert.equal(signal!.aborted, true, "the handler's signal tells it to give up");
  const st = await producer.status(second.id);
  assert.equal(st.status, 'delivered', 'the message was released, not left leased for 60 s');
  assert.equal(stuck.active, 1, 'the stuck handler is still running, but its message is no longer ours');
  const again = await worker.pull({ max: 1 });
  assert.equal(again.messages[0]!.id, second.id);
  const late = await worker.ack(again.messages[0]!.id, again.messages[0]!.lease_id).catch((e: AdmpApiError) => e);
  assert.deepEqual(late, { id: second.id, status: 'acked' });
});

test("a lost lease aborts the handler's signal, also when the handler reads it only afterwards", async (t) => {
  const s = await startSdkServer();
  t.after(() => s.close());
  const [a, b] = [await s.api.agent('producer'), await s.api.agent('worker')];
  const producer = new AdmpClient({ baseUrl: s.url, credentials: { token: a.token } });
  const worker = new AdmpClient({ baseUrl: s.url, credentials: { token: b.token } });
  await producer.send({ to: b.address, type: 'job', body: 'early' });
  await producer.send({ to: b.address, type: 'job', body: 'late' });

  const seen = new Map<string, { aborted: boolean; reason: string }>();
  const errors: unknown[] = [];
  const consumer = worker.consume(
    async (m, ctx) => {
      // Someone else settles the lease (here: an ack with its lease id); the next heartbeat finds it gone.
      await worker.ack(m.id, m.lease_id);
      let signal: AbortSignal | undefined;
      if (m.body === 'early') signal = ctx.signal;
      await sleep(1200); // past the heartbeat at a third of the 1 s visibility timeout
      signal ??= ctx.signal;
      seen.set(m.body as string, { aborted: signal.aborted, reason: String(signal.reason) });
    },
    { concurrency: 2, visibilityTimeout: 1, onError: (e) => errors.push(e) },
  );
  await until('both handled', () => seen.size === 2);
  await consumer.stop();
  for (const body of ['early', 'late']) {
    assert.equal(seen.get(body)!.aborted, true, `${body}: aborted`);
    assert.match(seen.get(body)!.reason, /lease of .* lost/);
  }
  assert.ok(errors.some((e) => (e as AdmpApiError).code === 'lease_conflict'));
});
