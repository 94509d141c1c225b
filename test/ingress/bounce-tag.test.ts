// Delivery reports are acted on only at a valid, unexpired bounce tag of one of our agents
// domains, and only on the outbound message the tag names; everything else that looks like
// a report is refused 5.7.1 and counted; a report cannot grow a delivery_log without bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  bounceAddress,
  bounceTagLifetimeSec,
  readBounceAddress,
  returnPathMaxAgeSec,
} from '../../src/core/bounce-tag.js';
import { createHousekeeping } from '../../src/mailbox/housekeeping.js';
import { serverSecret } from '../../src/db/server-secret.js';
import { REPORT_LIMITS, recordDeliveryReport } from '../../src/db/delivery-reports.js';
import { messageDetail, searchMessages } from '../../src/db/message-search.js';
import { loadMigrations } from '../../src/db/migrate.js';
import { createLmtpServer } from '../../src/lmtp/server.js';
import { createLogger } from '../../src/log.js';
import { startTestApi } from '../helpers/api.js';
import { lmtpSend } from '../helpers/lmtp-client.js';

const TOKEN = 'ingress-secret-for-tests-0123456789';
const ID = '0b7e3c1e-5b7a-4d2e-9c1f-2a3b4c5d6e7f';
const SECRET = Buffer.alloc(32, 9);
const NOW = 1_767_225_600;
const read = (address: string, nowSec = NOW, secret = SECRET) =>
  readBounceAddress(address, { domains: ['agents.test'], nowSec, maxAgeSec: 9 * 86_400, secret });

test('the tag: made and read back; any other domain, MAC, age or form is invalid', () => {
  const a = bounceAddress(ID, 'agents.test', NOW, SECRET);
  assert.match(a, /^admp-bounce\+0b7e3c1e5b7a4d2e9c1f2a3b4c5d6e7f\.\d+\.[0-9a-f]{12}@agents\.test$/);
  assert.ok(a.split('@')[0]!.length <= 64, 'RFC 5321 §4.5.3.1.1: a local part is at most 64 octets');
  assert.deepEqual(read(a), { valid: true, messageId: ID });
  assert.deepEqual(read(a.toUpperCase().replace('AGENTS.TEST', 'agents.test')), { valid: true, messageId: ID });
  assert.deepEqual(read(a.replace('@agents.test', '@agents.other.test')), { valid: false, reason: 'foreign_domain' });
  assert.deepEqual(read(a, NOW, Buffer.alloc(32, 1)), { valid: false, reason: 'bad_mac' });
  const otherId = a.replace('0b7e3c1e', '0b7e3c1f');
  assert.deepEqual(read(otherId), { valid: false, reason: 'bad_mac' }, 'the MAC covers the id');
  assert.deepEqual(read(a, NOW + 11 * 86_400), { valid: false, reason: 'expired' });
  assert.deepEqual(read(a, NOW + 8 * 86_400), { valid: true, messageId: ID });
  assert.deepEqual(read(a, NOW - 3 * 86_400), { valid: false, reason: 'expired' }, 'made in the future');
  for (const bad of [`admp-bounce+${ID}@agents.test`, 'admp-bounce+@agents.test', 'bob@agents.test'])
    assert.deepEqual(read(bad), { valid: false, reason: 'malformed' });
});

test('bounceTagLifetimeSec: a tag is refused from that long after it was made, whatever the time of day', () => {
  for (const maxAgeSec of [9 * 86_400, 86_400 + 1, 3_600, 172_800 + 7 * 86_400 - 1])
    for (let made = NOW; made < NOW + 86_400; made += 3_607) {
      const a = bounceAddress(ID, 'agents.test', made, SECRET);
      const at = (nowSec: number) =>
        readBounceAddress(a, { domains: ['agents.test'], nowSec, maxAgeSec, secret: SECRET }).valid;
      assert.equal(at(made + bounceTagLifetimeSec(maxAgeSec)), false, `maxAge ${maxAgeSec}, made ${made}`);
      assert.equal(at(made + maxAgeSec), true, `maxAge ${maxAgeSec}, made ${made}`);
    }
});

function dsn(to: string, o: { action?: string; mid?: string; diagnostic?: string } = {}): Buffer {
  return Buffer.from(
    [
      'From: MAILER-DAEMON@mx.partner.test',
      `To: ${to}`,
      'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      'It failed.',
      '',
      '--B',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.partner.test',
      '',
      'Final-Recipient: rfc822; x@agents.partner.test',
      `Action: ${o.action ?? 'failed'}`,
      'Status: 5.1.1',
      `Diagnostic-Code: smtp; ${o.diagnostic ?? '550 5.1.1 no such agent'}`,
      '',
      '--B',
      'Content-Type: text/rfc822-headers',
      '',
      `Message-ID: <${o.mid ?? 'orig-1@agents.test'}>`,
      '',
      '--B--',
      '',
    ].join('\r\n'),
  );
}

async function world(t: import('node:test').TestContext) {
  const api = await startTestApi({ ADMP_INGRESS_TOKEN: TOKEN, ADMP_POLICY_FILE: '' });
  t.after(() => api.close());
  const alice = await api.agent('alice');
  const bob = await api.agent('bob');
  const outbound = async (mid: string) => {
    const { rows } = await api.db.pool.query<{ id: string }>(
      `SELECT id FROM enqueue_message(jsonb_build_array(jsonb_build_object('to_agent_id', 'x@agents.partner.test',
         'channel', 'smtp', 'from_agent', 'alice@agents.test', 'type', 't', 'body', '{}'::jsonb, 'status', 'queued',
         'ttl_sec', 600, 'mail_message_id', $1::text)))`,
      [mid],
    );
    await api.db.pool.query("UPDATE message SET status = 'sent' WHERE id = $1", [rows[0]!.id]);
    return rows[0]!.id;
  };
  const secret = await serverSecret(api.db.pool, 'bounce_tag');
  const tag = (id: string, domain = 'agents.test', at = Math.floor(Date.now() / 1000), key = secret) =>
    bounceAddress(id, domain, at, key);
  const post = (raw: Buffer, to: string) =>
    api.core.app.inject({
      method: 'POST',
      url: '/ingress/rspamd',
      payload: raw,
      headers: {
        'content-type': 'message/rfc822',
        authorization: `Bearer ${TOKEN}`,
        'x-envelope-from': '',
        'x-envelope-to': to,
        'x-rspamd-auth': JSON.stringify({ dkim: [] }),
      },
    });
  const row = async (id: string) =>
    (
      await api.db.pool.query<{
        status: string;
        delivered_at: Date | null;
        delivery_log: { event: string; recipients?: { diagnostic?: string }[] }[];
      }>('SELECT status, delivered_at, delivery_log FROM message WHERE id = $1', [id])
    ).rows[0]!;
  return { api, alice, bob, outbound, tag, post, row };
}

test('a report at a valid tag changes the one outbound message it names, nothing else', async (t) => {
  const w = await world(t);
  const [a, b] = [await w.outbound('a@agents.test'), await w.outbound('b@agents.test')];
  const r = await w.post(dsn(w.tag(a), { mid: 'b@agents.test' }), w.tag(a));
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().reports, [{ recipient: w.tag(a), message: a }]);
  assert.equal((await w.row(a)).status, 'failed');
  assert.equal((await w.row(b)).status, 'sent', 'the Message-ID inside the report names b: ignored');
});

test('retention keeps an outbound message while its tag is valid, and a report for it still acts', async (t) => {
  const w = await world(t);
  const a = await w.outbound('a@agents.test');
  const DAY = 86_400;
  // Sent 5 days ago (its last attempt's claim ran out then), with that day's tag; the
  // retention period (1 day) has passed, the tag (deadline + 7 days + slack) has not.
  await w.api.db.pool.query(
    "UPDATE message SET next_attempt_at = now() - interval '5 days', expires_at = now() - interval '5 days' WHERE id = $1",
    [a],
  );
  const housekeeping = createHousekeeping(w.api.db.pool, w.api.config);
  assert.deepEqual(await housekeeping.removeFinished(DAY, 100), { messages: 0, dedupeKeys: 0 });
  const tagged = w.tag(a, 'agents.test', Math.floor(Date.now() / 1000) - 5 * DAY);
  const r = await w.post(dsn(tagged), tagged);
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().reports, [{ recipient: tagged, message: a }]);
  assert.equal((await w.row(a)).status, 'failed');
  // Once no tag of it can be valid any more, retention removes it.
  const life = bounceTagLifetimeSec(returnPathMaxAgeSec(w.api.config.outboundDeadlineSec));
  await w.api.db.pool.query('UPDATE message SET next_attempt_at = now() - make_interval(secs => $2) WHERE id = $1', [
    a,
    life + 60,
  ]);
  assert.deepEqual(await housekeeping.removeFinished(DAY, 100), { messages: 1, dedupeKeys: 0 });
});

test('forged, foreign, expired or misdirected reports are refused 5.7.1 and change nothing', async (t) => {
  const w = await world(t);
  const a = await w.outbound('a@agents.test');
  const old = Math.floor(Date.now() / 1000) - (w.api.config.outboundDeadlineSec + 9 * 86_400);
  const cases: [string, Buffer, string][] = [
    ['a tag under another key', dsn('x'), w.tag(a, 'agents.test', undefined, Buffer.alloc(32, 3))],
    ['the old untagged form', dsn('x'), `admp-bounce+${a}@agents.test`],
    ['a tag at a domain that is not ours', dsn('x'), w.tag(a, 'agents.evil.test')],
    ['an expired tag', dsn('x'), w.tag(a, 'agents.test', old)],
    ['a report to an agent, matched by Message-ID', dsn('x', { mid: 'a@agents.test' }), w.bob.address],
  ];
  for (const [why, raw, to] of cases) {
    const r = await w.post(raw, to);
    assert.equal(r.statusCode, 422, `${why}: ${r.body}`);
    assert.equal(r.json().error.code, 'report_refused', why);
    assert.match(r.json().smtp_message, /^5\.7\.1 /, why);
  }
  // Mail that is not a report, at a valid tag: refused too (the return path takes reports only).
  const notReport = Buffer.from('From: x@agents.partner.test\r\nSubject: hi\r\n\r\nhello\r\n');
  assert.equal((await w.post(notReport, w.tag(a))).json().error.code, 'report_refused');
  const m = await w.row(a);
  assert.equal(m.status, 'sent');
  assert.deepEqual(
    m.delivery_log.map((e) => e.event),
    ['queued'],
  );
  // Counted: the ingress answers by error code.
  const text = await w.api.core.metrics.registry.metrics();
  assert.match(text, /^admp_ingress_total\{[^}]*code="report_refused"[^}]*\} 6$/m);
  const { rows } = await w.api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 1, 'no report was enqueued as mail');
});

test('a valid tag naming inbound mail is taken and dropped: inbound mail never changes', async (t) => {
  const w = await world(t);
  // Inbound mail by email, to a local agent and to a tenant's agent (stored as its whole
  // address, '@' and all): what tells outbound mail is its status, not its recipient's form.
  const inbound: string[] = [];
  for (const to of ['bob', 'carol@agents.tenant.test']) {
    const { rows } = await w.api.db.pool.query<{ id: string }>(
      `SELECT id FROM enqueue_message(jsonb_build_array(jsonb_build_object('to_agent_id', $1::text, 'channel', 'smtp',
         'from_agent', 'w@agents.partner.test', 'type', 't', 'body', '{}'::jsonb, 'status', 'delivered', 'ttl_sec', 600)))`,
      [to],
    );
    inbound.push(rows[0]!.id);
  }
  const r = await w.post(dsn('x', { action: 'delivered' }), w.tag(inbound[0]!));
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().reports, [{ recipient: w.tag(inbound[0]!), message: null }]);
  // Whatever a tag could name (the MAC aside), a report changes no inbound message in any state.
  const before = await Promise.all(inbound.map((id) => w.row(id)));
  for (const status of ['delivered', 'leased', 'acked', 'dead']) {
    // Values, not now() or gen_random_uuid(): Citus refuses volatile functions in an UPDATE.
    const leased = status === 'leased';
    await w.api.db.pool.query(
      'UPDATE message SET status = $2::message_status, lease_id = $3, lease_until = $4 WHERE id = ANY($1::uuid[])',
      [inbound, status, leased ? randomUUID() : null, leased ? new Date(Date.now() + 60_000) : null],
    );
    for (const id of inbound)
      for (const next of ['delivered', 'failed', null] as const)
        assert.equal(await recordDeliveryReport(w.api.db.pool, id, next, [{ action: 'x' }]), undefined, status);
  }
  for (const [i, id] of inbound.entries()) {
    const m = await w.row(id);
    assert.equal(m.status, 'dead');
    assert.deepEqual(m.delivered_at, before[i]!.delivered_at);
    assert.deepEqual(m.delivery_log, before[i]!.delivery_log);
  }
});

test('a "delivered" report: shown delivered, stored sent, left alone by sweeps and gauges, removed by retention', async (t) => {
  const w = await world(t);
  const a = await w.outbound('a@agents.test');
  assert.equal((await w.post(dsn('x', { action: 'delivered' }), w.tag(a))).statusCode, 200);
  const stored = await w.row(a);
  assert.equal(stored.status, 'sent', 'stored delivered would mean waiting in an inbox');
  assert.ok(stored.delivered_at);
  // A later failure report is logged and changes nothing (the first verdict stands).
  assert.equal((await w.post(dsn('x', { action: 'failed' }), w.tag(a))).statusCode, 200);
  const m = await w.row(a);
  assert.equal(m.status, 'sent');
  assert.deepEqual(m.delivered_at, stored.delivered_at);
  assert.deepEqual(
    m.delivery_log.map((e) => e.event),
    ['queued', 'dsn', 'dsn'],
  );
  // Shown as delivered: to its sender, in the admin search and detail.
  const status = await w.api.core.app.inject({ url: `/v1/messages/${a}`, headers: w.alice.auth });
  assert.equal(status.statusCode, 200, status.body);
  assert.equal(status.json().status, 'delivered');
  assert.equal(status.json().delivered_at, stored.delivered_at!.toISOString());
  assert.equal((await messageDetail(w.api.db.pool, a))!.status, 'delivered');
  const search = async (s: 'sent' | 'delivered') =>
    (await searchMessages(w.api.db.pool, { status: s, limit: 10 })).map((r) => [r.id, r.status]);
  assert.deepEqual(await search('delivered'), [[a, 'delivered']]);
  assert.deepEqual(await search('sent'), []);
  // Past its TTL and its last attempt: no sweep makes it dead, no inbox gauge counts it.
  await w.api.db.pool.query(
    "UPDATE message SET expires_at = now() - interval '5 days', next_attempt_at = now() - interval '5 days' WHERE id = $1",
    [a],
  );
  const housekeeping = createHousekeeping(w.api.db.pool, w.api.config);
  assert.deepEqual(await housekeeping.sweep(), { returned: 0, dead: [] });
  assert.equal((await w.row(a)).status, 'sent');
  assert.deepEqual(await housekeeping.stats(10), { deepest: [], byStatus: [], oldestDeliverableSec: null });
  // Retention: kept while a tag of it may be valid, removed after.
  assert.deepEqual(await housekeeping.removeFinished(86_400, 100), { messages: 0, dedupeKeys: 0 });
  const life = bounceTagLifetimeSec(returnPathMaxAgeSec(w.api.config.outboundDeadlineSec));
  await w.api.db.pool.query('UPDATE message SET next_attempt_at = now() - make_interval(secs => $2) WHERE id = $1', [
    a,
    life + 60,
  ]);
  assert.deepEqual(await housekeeping.removeFinished(86_400, 100), { messages: 1, dedupeKeys: 0 });
});

test('the migration moves outbound mail once marked delivered back to sent, keeping delivered_at; inbound mail stays', async (t) => {
  const w = await world(t);
  const a = await w.outbound('a@agents.test');
  const at = new Date(Date.now() - 60_000);
  // The state a "delivered" report left before: status delivered on the outbound row.
  await w.api.db.pool.query(
    `UPDATE message SET status = 'delivered', delivered_at = $2,
            delivery_log = delivery_log || '[{"event": "dsn"}]'::jsonb WHERE id = $1`,
    [a, at],
  );
  const { rows } = await w.api.db.pool.query<{ id: string }>(
    `SELECT id FROM enqueue_message(jsonb_build_array(jsonb_build_object('to_agent_id', 'carol@agents.tenant.test',
       'channel', 'smtp', 'from_agent', 'w@agents.partner.test', 'type', 't', 'body', '{}'::jsonb, 'status', 'delivered',
       'ttl_sec', 600)))`,
  );
  const migration = (await loadMigrations()).find((m) => m.name.endsWith('_outbound_delivered_stays_sent'))!;
  for (let i = 0; i < 2; i++) await w.api.db.pool.query(migration.sql);
  const m = await w.row(a);
  assert.equal(m.status, 'sent');
  assert.deepEqual(m.delivered_at, at);
  assert.equal((await w.row(rows[0]!.id)).status, 'delivered');
});

test('each delivery_log entry and the whole log are bounded', async (t) => {
  const w = await world(t);
  const a = await w.outbound('a@agents.test');
  const huge = 'z'.repeat(200_000);
  for (let i = 0; i < 6; i++) {
    const r = await w.post(dsn('x', { action: 'delayed', diagnostic: huge }), w.tag(a));
    assert.equal(r.statusCode, 200, r.body);
  }
  const m = await w.row(a);
  const size = Buffer.byteLength(JSON.stringify(m.delivery_log));
  assert.ok(size < REPORT_LIMITS.logBytes + 4 * REPORT_LIMITS.text, `log is ${size} bytes`);
  for (const e of m.delivery_log.filter((x) => x.event === 'dsn'))
    assert.ok(e.recipients![0]!.diagnostic!.length <= REPORT_LIMITS.text);
});

test('LMTP: a bounce address is accepted at RCPT only with a valid tag at one of our domains', async (t) => {
  const w = await world(t);
  const a = await w.outbound('a@agents.test');
  const server = createLmtpServer({
    config: w.api.config,
    log: createLogger('silent'),
    ingest: w.api.core.ingest,
    directory: w.api.core.directory,
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => server.close(() => ok())));
  const port = (server.server.address() as AddressInfo).port;
  const forged = [`admp-bounce+${a}@agents.test`, `admp-bounce+${a}@anything.example`, w.tag(a, 'agents.evil.test')];
  const tr = await lmtpSend(port, { from: '', to: [...forged, w.tag(a)], data: dsn(w.tag(a)) });
  for (let i = 0; i < forged.length; i++) assert.match(tr.rcpt[i]!, /^550 5\.7\.1 /, forged[i]);
  assert.match(tr.rcpt[3]!, /^250/);
  assert.equal(tr.data.length, 1);
  assert.match(tr.data[0]!, /^250 2\.6\.0 .*delivery report recorded/);
  assert.equal((await w.row(a)).status, 'failed');
});
