// The replay rule of signed mail (docs/protocol.md §11, "Mail replays"): one row per
// (signing agent, Message-ID) and inbox on every road, made of the signed canonical fields
// only, kept until the signature's acceptance window has closed whatever the retention.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { agentMail, signer, trust, type TestSigner } from '../helpers/agent-mail.js';
import { lmtpSend } from '../helpers/lmtp-client.js';
import { startTestLmtp } from '../helpers/lmtp-server.js';
import { removeFinished } from '../../src/db/retention.js';
import type { Road } from '../../src/ingress/delivery.js';

const MTA = 'mx.agents.test';
const PARTNER = 'agents.partner.example';
const VALIDITY = 432_000;
const SKEW = 300;

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const api = await startTestApi({
    ADMP_MTA_HOSTNAME: MTA,
    ADMP_POLICY_FILE: '',
    ADMP_SIGNATURE_VALIDITY_SEC: String(VALIDITY),
    ADMP_CLOCK_SKEW_SEC: String(SKEW),
  });
  t.after(() => api.close());
  const lmtpPort = await startTestLmtp(api, t);
  await api.db.pool.query(
    `INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ('*@${PARTNER}', '*@agents.test', 'allow')`,
  );
  const bob = await api.agent('bob');
  const partner = signer(`w@${PARTNER}`);
  await trust(api.db.pool, partner);
  return { api, bob, partner, lmtpPort };
}

/** One delivery straight into the one ingest entry, as the road `road` hands it over (DKIM verdict trusted). */
async function ingest(api: TestApi, raw: Buffer, to: string, road: Road = 'rspamd') {
  const [r] = await api.core.ingest.ingest(
    {
      road,
      raw,
      envelopeFrom: `w@${PARTNER}`,
      recipients: [to],
      trusted: { source: 'rspamd', dkim: [{ result: 'pass', domain: PARTNER }] },
    },
    { atomic: true },
  );
  assert.equal(r!.kind, 'stored', JSON.stringify(r));
  const { id, duplicate } = r as { id: string; duplicate: boolean };
  return { id, duplicate };
}

const rows = async (api: TestApi) =>
  (await api.db.pool.query('SELECT id, subject, body FROM message ORDER BY created_at')).rows;

const mail = (
  s: TestSigner,
  to: string,
  messageId: string,
  body: unknown = { n: 1 },
  now?: number,
  validitySec?: number,
) => agentMail(s, { to, type: 'task.request', body }, { messageId, now, validitySec });

test('the stored subject and the dedupe key come from the signed canonical fields: a re-spaced Subject is the same mail', async (t) => {
  const { api, bob, partner } = await setup(t);
  // No subject in the envelope: the Subject header is what is signed, whitespace-collapsed.
  const raw = await mail(partner, bob.address, '<subject-1@agents.partner.example>');
  const text = raw.toString('latin1');
  assert.match(text, /^Subject: ADMP task\.request\r$/m);
  const first = await ingest(api, raw, bob.address);
  for (const variant of ['ADMP  task.request', 'ADMP\ttask.request', '  ADMP task.request ', 'ADMP\r\n task.request']) {
    const copy = Buffer.from(text.replace('Subject: ADMP task.request', `Subject: ${variant}`), 'latin1');
    const r = await ingest(api, copy, bob.address);
    assert.deepEqual(r, { ...first, duplicate: true }, JSON.stringify(variant));
  }
  const stored = await rows(api);
  assert.equal(stored.length, 1);
  assert.equal(stored[0].subject, 'ADMP task.request');

  // A first copy that arrives re-spaced stores the canonical subject, not the bytes received.
  const raw2 = await mail(partner, bob.address, '<subject-2@agents.partner.example>');
  const spaced = Buffer.from(
    raw2.toString('latin1').replace('Subject: ADMP task.request', 'Subject: ADMP \t  task.request'),
    'latin1',
  );
  const second = await ingest(api, spaced, bob.address);
  const { rows: s2 } = await api.db.pool.query('SELECT subject FROM message WHERE id = $1', [second.id]);
  assert.equal(s2[0].subject, 'ADMP task.request');
});

test('a second copy inside the window returns the first row whatever other bytes differ, on every road', async (t) => {
  const { api, bob, partner, lmtpPort } = await setup(t);
  const mid = '<same-nonce@agents.partner.example>';
  const now = Math.floor(Date.now() / 1000);
  const first = await ingest(api, await mail(partner, bob.address, mid, { n: 1 }, now), bob.address, 'rspamd');
  assert.equal(first.duplicate, false);

  // The same signed mail with unsigned headers added: the SMTP edge's road.
  const original = await mail(partner, bob.address, mid, { n: 1 }, now);
  const decorated = Buffer.concat([Buffer.from('X-Relay-Note: seen twice\r\nComments: resent\r\n'), original]);
  assert.deepEqual(await ingest(api, decorated, bob.address, 'smtp'), { id: first.id, duplicate: true });

  // The sender signed other content, a minute later, under the same Message-ID: still the first row.
  const resigned = await mail(partner, bob.address, mid, { n: 2, other: 'content' }, now + 60);
  assert.deepEqual(await ingest(api, resigned, bob.address, 'rspamd'), { id: first.id, duplicate: true });

  // Over LMTP, through the real socket.
  const tr = await lmtpSend(lmtpPort, {
    from: `w@${PARTNER}`,
    to: [bob.address],
    data: Buffer.concat([
      Buffer.from(
        `Authentication-Results: ${MTA}; dkim=pass header.d=${PARTNER} header.s=s1 header.b=abc; spf=pass smtp.mailfrom=${PARTNER}\r\n`,
      ),
      resigned,
    ]),
  });
  assert.equal(tr.data[0], `250 2.6.0 <${bob.address}> stored as ${first.id} (duplicate)`);

  const stored = await rows(api);
  assert.equal(stored.length, 1);
  assert.deepEqual(stored[0].body, { n: 1 }, 'the first copy is what was stored');

  // Another Message-ID is another message; another inbox keeps its own.
  const carol = await api.agent('carol');
  assert.equal((await ingest(api, await mail(partner, bob.address, '<other@x>'), bob.address)).duplicate, false);
  assert.equal((await ingest(api, await mail(partner, carol.address, mid), carol.address)).duplicate, false);
  assert.equal((await rows(api)).length, 3);
});

test('the replay entry outlives the retention period until the acceptance window closes', async (t) => {
  const { api, bob, partner } = await setup(t);
  const ts = Math.floor(Date.now() / 1000) - 60;
  const mid = '<kept@agents.partner.example>';
  const first = await ingest(api, await mail(partner, bob.address, mid, { n: 1 }, ts), bob.address);
  const keepUntil = async () =>
    (
      await api.db.pool.query<{ t: number }>(
        'SELECT extract(epoch FROM keep_until)::bigint AS t FROM message_dedupe WHERE message_id = $1',
        [first.id],
      )
    ).rows[0]?.t;
  assert.equal(Number(await keepUntil()), ts + VALIDITY + SKEW, 'timestamp + validity + skew');

  // Acked, and past a retention period of 0 s: the window is still open, so it stays.
  await api.db.pool.query("UPDATE message SET status = 'acked', acked_at = now() - interval '1 hour' WHERE id = $1", [
    first.id,
  ]);
  assert.deepEqual(await removeFinished(api.db.pool, { olderThanSec: 0, returnPathSec: 0 }, 100), {
    messages: 0,
    dedupeKeys: 0,
  });
  assert.deepEqual(await ingest(api, await mail(partner, bob.address, mid, { n: 1 }, ts), bob.address), {
    id: first.id,
    duplicate: true,
  });

  // A copy signed again later moves the end of the window to its own.
  await ingest(api, await mail(partner, bob.address, mid, { n: 1 }, ts + 30), bob.address);
  assert.equal(Number(await keepUntil()), ts + 30 + VALIDITY + SKEW);

  // A copy whose signer chose a longer validity (X-Agent-Expires, 6 days) keeps it that long.
  await ingest(api, await mail(partner, bob.address, mid, { n: 1 }, ts + 60, 6 * 86400), bob.address);
  assert.equal(Number(await keepUntil()), ts + 60 + 6 * 86400 + SKEW, 'the signer chose 6 days');

  // Once the window has closed, retention removes the message and its key.
  await api.db.pool.query("UPDATE message_dedupe SET keep_until = now() - interval '1 second' WHERE message_id = $1", [
    first.id,
  ]);
  assert.deepEqual(await removeFinished(api.db.pool, { olderThanSec: 0, returnPathSec: 0 }, 100), {
    messages: 1,
    dedupeKeys: 1,
  });

  // An HTTP send's key has no window of its own: retention removes it with its message, as before.
  const sent = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { ...bob.auth, 'idempotency-key': 'k-1' },
    payload: { to: bob.address, type: 'note', body: {} },
  });
  assert.equal(sent.statusCode, 201, sent.body);
  await api.db.pool.query("UPDATE message SET status = 'acked', acked_at = now() - interval '1 hour'");
  assert.deepEqual(await removeFinished(api.db.pool, { olderThanSec: 0, returnPathSec: 0 }, 100), {
    messages: 1,
    dedupeKeys: 1,
  });
});

test('a refused copy is answered as stored only when it holds the stored content: agent + Message-ID alone reveal nothing', async (t) => {
  const { api, bob, partner } = await setup(t);
  const mid = '<oracle@agents.partner.example>';
  const first = await ingest(api, await mail(partner, bob.address, mid, { secret: 1 }), bob.address);
  // A forger without the key: same agent and Message-ID, another signer's signature.
  const forger = signer(partner.agent, partner.kid);
  const [forged] = await api.core.ingest.ingest(
    {
      road: 'rspamd',
      raw: await mail(forger, bob.address, mid, { secret: 2 }),
      envelopeFrom: partner.agent,
      recipients: [bob.address],
      trusted: { source: 'rspamd', dkim: [{ result: 'pass', domain: PARTNER }] },
    },
    { atomic: true },
  );
  assert.equal(forged!.kind, 'refused');
  assert.equal(forged!.kind === 'refused' && forged!.error.code, 'signature_invalid');
  // A refused copy (here stale as well as badly signed) that holds the stored content is a
  // redelivery of the stored mail, answered as such (docs/protocol.md §6.3): whoever can
  // produce it already knows the whole message.
  const old = Math.floor(Date.now() / 1000) - VALIDITY - 3600;
  const [late] = await api.core.ingest.ingest(
    {
      road: 'rspamd',
      raw: await mail(forger, bob.address, mid, { secret: 1 }, old),
      envelopeFrom: partner.agent,
      recipients: [bob.address],
      trusted: { source: 'rspamd', dkim: [{ result: 'pass', domain: PARTNER }] },
    },
    { atomic: true },
  );
  assert.deepEqual(late, { recipient: bob.address, kind: 'stored', id: first.id, duplicate: true });
});
