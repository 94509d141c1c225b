// A deferral never becomes a bounce: a real Postfix with Mailcow's own queue timers
// (queue_run_delay, the backoff times and lifetimes of Mailcow's main.cf) delivers over
// LMTP to a bridge that is down, or loses the bridge's reply; the retry comes when
// Postfix's timers say, 35 minutes later here. Time is moved, not waited: the bridge's
// ingress clock runs 35 minutes ahead and `postqueue -f` stands in for the retry. The
// mail is judged fresh at our Postfix's receipt (its Received field), delivered once,
// and Postfix writes no bounce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SMTPServer } from 'smtp-server';
import { createLmtpServer } from '../../src/lmtp/server.js';
import { createLogger } from '../../src/log.js';
import type { Ingest } from '../../src/ingress/ingest.js';
import { requireBinaries } from '../helpers/requires.js';
import { startPostfix, type TestPostfix } from '../helpers/postfix.js';
import { freePort } from '../helpers/ports.js';
import { FIXTURE } from '../installer/checkout.js';
import { AGENTS, deliveryLine, logOf, startPartnerWorld, type PartnerWorld } from './partner.js';

const MTA = 'mx.test.example'; // test/helpers/postfix.ts's myhostname: the `by` of its Received field
const TIMERS = [
  'queue_run_delay',
  'minimal_backoff_time',
  'maximal_backoff_time',
  'maximal_queue_lifetime',
  'bounce_queue_lifetime',
];
const RETRY_AFTER_SEC = 35 * 60; // Mailcow's backoff: 300 s doubling to 1,800 s; the third retry

/** Mailcow's queue timers, as its main.cf sets them. */
function mailcowTimers(): Record<string, string> {
  const mainCf = readFileSync(join(FIXTURE, 'data', 'conf', 'postfix', 'main.cf'), 'utf8');
  const timers: Record<string, string> = {};
  for (const line of mainCf.split('\n')) {
    const m = /^(\w+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && TIMERS.includes(m[1]!)) timers[m[1]!] = m[2]!;
  }
  assert.deepEqual(Object.keys(timers).sort(), [...TIMERS].sort(), 'every timer is in the fixture');
  return timers;
}

/** An LMTP bridge on `port`; `loseReply`: the connection drops after the mail is stored, before the answer. */
async function bridge(world: PartnerWorld, port: number, loseReply = false): Promise<SMTPServer> {
  const sockets = new Set<Socket>();
  const ingest: Ingest = loseReply
    ? {
        ...world.api.core.ingest,
        async ingest(d, o) {
          const results = await world.api.core.ingest.ingest(d, o);
          for (const s of sockets) s.destroy();
          return results;
        },
      }
    : world.api.core.ingest;
  const lmtp = createLmtpServer({
    config: world.api.config,
    log: createLogger('silent'),
    ingest,
    directory: world.api.core.directory,
  });
  lmtp.server.on('connection', (s: Socket) => {
    sockets.add(s);
  });
  await new Promise<void>((ok) => lmtp.listen(port, '127.0.0.1', ok));
  return lmtp;
}
const stop = (lmtp: SMTPServer) => new Promise<void>((ok) => lmtp.close(() => ok()));

/** Nothing in Postfix's log or queue says a bounce: no status=bounced, no DSN made. */
function assertNoBounce(postfix: TestPostfix, qid: string): void {
  const lines = logOf(postfix, qid).join('\n');
  assert.doesNotMatch(lines, /status=bounced|sender non-delivery notification/, lines);
}

test("Postfix with Mailcow's retry timers: the bridge down across a retry, then a lost reply → delivered once, no bounce", async (t) => {
  if (!requireBinaries(t, ['postfix', 'postqueue', 'swaks'])) return;
  let offset = 0;
  const world = await startPartnerWorld(
    t,
    // No milter here: the bridge verifies DKIM itself (the partner's key is in the test DNS).
    { ADMP_MTA_HOSTNAME: MTA, ADMP_DKIM_MODE: 'verify', ADMP_SHUTDOWN_GRACE_MS: '300' },
    { ingressNow: () => Math.floor(Date.now() / 1000) + offset },
  );
  const { bob } = world;
  const port = await freePort();
  const timers = mailcowTimers();
  const postfix = await startPostfix({
    milter: null,
    relayDomains: [AGENTS],
    transport: { [AGENTS]: `lmtp:inet:127.0.0.1:${port}` },
    main: timers,
  });
  world.onClose(() => postfix.stop());
  assert.equal(timers.minimal_backoff_time, '300s');

  await t.test('the bridge is down when Postfix first delivers; up when it retries 35 minutes later', async () => {
    offset = 0;
    const mails = [await world.mail(bob.address), await world.mail(bob.address, { validitySec: 600 })];
    const sent: string[] = [];
    for (const mail of mails) {
      const r = await world.send(postfix, [bob.address], mail);
      assert.equal(r.code, 250, r.transcript);
      sent.push(r.queueId!);
      assert.match(await deliveryLine(postfix, r.queueId, bob.address, 'deferred'), /Connection refused/);
    }
    // Mailcow's timers hold it: nothing retries within seconds (the helper's default would at +2 s).
    await sleep(3000);
    const deferred = (await postfix.queue()).filter((m) => sent.includes(m.queue_id));
    assert.deepEqual(
      deferred.map((m) => m.queue_name),
      ['deferred', 'deferred'],
    );
    offset = RETRY_AFTER_SEC; // the retry comes when the backoff says, past any ±5 min window
    const lmtp = await bridge(world, port);
    try {
      await postfix.flush();
      for (const [i, qid] of sent.entries()) {
        const line = await deliveryLine(postfix, qid, bob.address, 'sent', 30_000);
        const [row, ...more] = await world.stored(mails[i]!);
        assert.deepEqual(more, [], 'stored once');
        assert.ok(line.includes(`stored as ${row!.id})`), line);
        assertNoBounce(postfix, qid);
      }
      assert.deepEqual(await postfix.queue(), [], 'nothing left queued, no DSN');
    } finally {
      await stop(lmtp);
    }
  });

  await t.test('the reply is lost after the mail was stored; the retry 35 minutes later is its duplicate', async () => {
    offset = 0;
    const lossy = await bridge(world, port, true);
    const mail = await world.mail(bob.address, { validitySec: 600 });
    const r = await world.send(postfix, [bob.address], mail);
    assert.equal(r.code, 250, r.transcript);
    try {
      assert.match(await deliveryLine(postfix, r.queueId, bob.address, 'deferred'), /lost connection/);
    } finally {
      await stop(lossy);
    }
    const [row] = await world.stored(mail);
    assert.ok(row, 'the first delivery was stored');
    offset = RETRY_AFTER_SEC;
    const lmtp = await bridge(world, port);
    try {
      await postfix.flush();
      const line = await deliveryLine(postfix, r.queueId, bob.address, 'sent', 30_000);
      assert.ok(line.includes(`stored as ${row.id} (duplicate))`), line);
      assert.equal((await world.stored(mail)).length, 1, 'stored once');
      assertNoBounce(postfix, r.queueId!);
      assert.deepEqual(await postfix.queue(), []);
    } finally {
      await stop(lmtp);
    }
  });
});
