// Mutated signed mail, from a fixed seed: FUZZ_MAILS (20,000 by default) through the one
// ingest entry in-process, and a sample of them over both mail roads (the Rspamd HTTP road
// and LMTP on a real socket). Whatever a mutation did, the answer is stored or a permanent
// refusal: never a 500, never a temporary failure (the database is healthy, so one would be
// caused by content); every stored row is exactly what its signature vouches for, once per
// recipient and Message-ID; and no delivery report is acted on without a valid bounce tag.
// FUZZ_SEED and FUZZ_MAILS reproduce or widen a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi } from '../helpers/api.js';
import { agentMail, signer, trust, type TestSigner } from '../helpers/agent-mail.js';
import { lmtpSend } from '../helpers/lmtp-client.js';
import { startTestLmtp } from '../helpers/lmtp-server.js';
import { startDns } from '../helpers/dns.js';
import { LOOPBACK_ALLOWED, loopbackLookup, startJwksServer } from '../keys/loopback.js';
import type { Envelope } from '../../src/core/envelope.js';
import type { RecipientResult, Road } from '../../src/ingress/delivery.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const MAILS = Number(process.env.FUZZ_MAILS ?? 20_000);
const RSPAMD_SAMPLE = 300;
const LMTP_SAMPLE = 200;
const ORIGINALS = 40;
const CONCURRENCY = 8;

const MTA = 'mx.agents.test';
const PARTNER = 'agents.partner.example';
const TOKEN = 'ingress-secret-for-the-fuzz-test-0123456789';
const AR = `Authentication-Results: ${MTA}; dkim=pass header.d=${PARTNER} header.s=s1 header.b=abc\r\n`;

/** mulberry32: a small seeded PRNG, so a run is reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Original {
  readonly raw: Buffer;
  readonly messageId: string;
  readonly envelope: Envelope;
}

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)]!;

const HOSTILE_BYTES = [0x00, 0xff, 0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x3d, 0x22, 0x5c, 0xc3, 0xe2, 0x80];
const HEADER_INSERTS = [
  'X-Agent-ID: mallory@agents.partner.example',
  'X-Agent-Timestamp: 1',
  'X-Agent-Signature: AAAA',
  'Subject: something else',
  'From: mallory@agents.partner.example',
  'Message-ID: <other@agents.partner.example>',
  'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
  'Content-Type:',
  'Content-Type: application/json',
  'Content-Transfer-Encoding: quoted-printable',
  'Received: from x by mx.agents.test; Thu, 1 Jan 1970 00:00:00 +0000',
  'Comments: =?utf-8?q?=00=FF?=',
  'Subject: =?utf-8?b?AA==?=',
  'X-Filler: \u0000\u00ff',
];
const CONTENT_TYPES = [
  '',
  'multipart/report; report-type=delivery-status; boundary="x"',
  'application/json',
  'text/plain',
  'multipart/mixed',
  'message/rfc822',
  'application/json; charset=utf-16',
];

function headerEnd(b: Buffer): number {
  const i = b.indexOf('\r\n\r\n');
  return i < 0 ? b.length : i;
}

/** One mutation of the mail's bytes. Some keep the signature valid (an MTA's changes), most do not. */
const MUTATIONS: ((b: Buffer, rng: Rng) => Buffer)[] = [
  // A byte anywhere becomes another.
  (b, rng) => {
    const c = Buffer.from(b);
    c[int(rng, c.length)] = rng() < 0.5 ? pick(rng, HOSTILE_BYTES) : int(rng, 256);
    return c;
  },
  // A range disappears.
  (b, rng) => {
    const at = int(rng, b.length);
    return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(rng, 64)))]);
  },
  // Hostile bytes are inserted.
  (b, rng) => {
    const at = int(rng, b.length);
    const ins = Buffer.from(Array.from({ length: 1 + int(rng, 8) }, () => pick(rng, HOSTILE_BYTES)));
    return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
  },
  // Truncated.
  (b, rng) => b.subarray(0, int(rng, b.length)),
  // A header line is repeated, or dropped.
  (b, rng) => {
    const head = b.subarray(0, headerEnd(b)).toString('latin1').split('\r\n');
    const i = int(rng, head.length);
    if (rng() < 0.5) head.splice(i, 0, head[i]!);
    else head.splice(i, 1);
    return Buffer.concat([Buffer.from(head.join('\r\n'), 'latin1'), b.subarray(headerEnd(b))]);
  },
  // A header is added at the top (where a relay adds its own).
  (b, rng) => Buffer.concat([Buffer.from(`${pick(rng, HEADER_INSERTS)}\r\n`, 'latin1'), b]),
  // The Subject is re-spaced or re-folded (signed whitespace-collapsed: still valid).
  (b, rng) =>
    Buffer.from(
      b
        .toString('latin1')
        .replace(/^(Subject: .*?) /m, (_m, s: string) => `${s}${pick(rng, ['  ', '\t', '\r\n ', ' \t '])}`),
      'latin1',
    ),
  // Header names change case (valid).
  (b) => {
    const end = headerEnd(b);
    return Buffer.concat([
      Buffer.from(
        b
          .subarray(0, end)
          .toString('latin1')
          .replace(/^[A-Za-z-]+:/gm, (n) => n.toUpperCase()),
        'latin1',
      ),
      b.subarray(end),
    ]);
  },
  // Some Content-Type takes another value, or none.
  (b, rng) => {
    const s = b.toString('latin1');
    const all = [...s.matchAll(/^Content-Type:[^\r\n]*/gim)];
    if (all.length === 0) return b;
    const m = pick(rng, all);
    return Buffer.from(
      `${s.slice(0, m.index)}Content-Type: ${pick(rng, CONTENT_TYPES)}${s.slice(m.index! + m[0].length)}`,
      'latin1',
    );
  },
  // The envelope part's base64 is replaced by hostile JSON (unsigned: the signature must fail).
  (b, rng) => {
    const s = b.toString('latin1');
    const json = pick(rng, [
      '{"to":"bob@agents.test","type":"task.request","body":{"x":"\\u0000"}}',
      '{"to":"bob@agents.test","type":"task.request","body":"\\ud800"}',
      `{"to":"bob@agents.test","type":"task.request","body":${'['.repeat(3000)}${']'.repeat(3000)}}`,
      '{"to":"kim@agents.test","type":"task.request","body":{}}',
      '{"to":"bob@agents.test","type":"task.request","body":{},"ttl_sec":-1}',
      '[]',
      'null',
    ]);
    return Buffer.from(
      s.replace(
        /(filename="?admp-envelope\.json"?\r\n\r\n)[A-Za-z0-9+/=\r\n]+/,
        `$1${Buffer.from(json).toString('base64')}\r\n`,
      ),
      'latin1',
    );
  },
];

/** A delivery status report (RFC 3464) about one of our outbound messages, to no valid tag. */
function forgedReport(rng: Rng, outboundMid: string): Buffer {
  const action = pick(rng, ['failed', 'delivered', 'delayed']);
  return Buffer.from(
    [
      'From: MAILER-DAEMON@relay.example',
      'To: someone@agents.test',
      `Message-ID: <dsn-${int(rng, 1e9)}@relay.example>`,
      'Subject: Delivery Status Notification',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'attacker text '.repeat(1 + int(rng, 50)),
      '--b',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; relay.example',
      '',
      'Final-Recipient: rfc822; x@remote.example',
      `Action: ${action}`,
      'Status: 5.0.0',
      '',
      '--b',
      'Content-Type: text/rfc822-headers',
      '',
      `Message-ID: ${outboundMid}`,
      '',
      '--b--',
      '',
    ].join('\r\n'),
  );
}

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const jwks = await startJwksServer();
  const dns = await startDns();
  jwks.set(PARTNER, { body: { keys: [] } });
  const api = await startTestApi(
    {
      ADMP_MTA_HOSTNAME: MTA,
      ADMP_POLICY_FILE: '',
      ADMP_INGRESS_TOKEN: TOKEN,
      ADMP_INGRESS_BUDGET_MS: '60000',
      ADMP_JWKS_SCHEME: 'http',
      ADMP_FETCH_ALLOW: LOOPBACK_ALLOWED,
      ADMP_JWKS_PORT: String(jwks.port),
      ADMP_DNS_SERVERS: dns.server,
    },
    { keyDeps: { lookup: loopbackLookup() } },
  );
  t.after(async () => {
    await api.close();
    await jwks.stop();
    await dns.stop();
  });
  const lmtpPort = await startTestLmtp(api, t);
  await api.db.pool.query(
    `INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ('*@${PARTNER}', '*@agents.test', 'allow')`,
  );
  return { api, lmtpPort };
}

async function originals(rng: Rng, partner: TestSigner, recipients: readonly string[]): Promise<Original[]> {
  const words = ['Résumé', 'task', '✓', 'naïve', '😀', 'x', 'Quarterly  review', '\t'];
  const out: Original[] = [];
  for (let i = 0; i < ORIGINALS; i++) {
    const envelope: Envelope = {
      to: recipients[i % recipients.length]!,
      type: pick(rng, ['task.request', 'task.result', 'note']),
      ...(rng() < 0.5 ? { subject: `${pick(rng, words)} ${pick(rng, words)}` } : {}),
      ...(rng() < 0.5 ? { correlation_id: `c-${i}` } : {}),
      body: { i, text: `${pick(rng, words)} ${pick(rng, words)}`, list: [1, 2.5, null, true, { deep: [i] }] },
    } as Envelope;
    const messageId = `<fuzz-${SEED}-${i}@${PARTNER}>`;
    out.push({ raw: await agentMail(partner, envelope, { messageId }), messageId: messageId.slice(1, -1), envelope });
  }
  return out;
}

test(`fuzz: ${MAILS} mutated signed mails in-process (seed ${SEED}), a sample over the Rspamd and LMTP roads`, async (t) => {
  const started = performance.now();
  const rng = prng(SEED);
  const { api, lmtpPort } = await setup(t);
  const [alice, bob, carol] = [await api.agent('alice'), await api.agent('bob'), await api.agent('carol')];
  const partner = signer(`w@${PARTNER}`);
  await trust(api.db.pool, partner);
  const mails = await originals(rng, partner, [bob.address, carol.address]);

  // Outbound messages a forged report could try to change.
  const outbound: { id: string; mid: string }[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await api.core.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: alice.auth,
      payload: { to: `x${i}@remote.example`, type: 'task.request', body: { i } },
    });
    assert.equal(r.statusCode, 201, r.body);
    outbound.push({ id: r.json().id, mid: `<${r.json().id}@agents.test>` });
  }
  const recipientsFor = (o: Original): string => {
    const x = rng();
    if (x < 0.8) return o.envelope.to;
    return pick(rng, [
      bob.address,
      carol.address,
      '\u212Aob@agents.test',
      'nobody@agents.test',
      `admp-bounce+${outbound[0]!.id.replace(/-/g, '')}.20000.000000000000@agents.test`,
      'admp-bounce+zz@agents.test',
      `${o.envelope.to.replace('@', '+detail@')}`,
    ]);
  };

  /** An original mutated 0–3 times, or (one in fifty) a forged delivery report. */
  function mail(): { raw: Buffer; to: string } {
    if (rng() < 0.02) {
      const o = pick(rng, outbound);
      return {
        raw: forgedReport(rng, o.mid),
        to: pick(rng, [bob.address, `admp-bounce+${o.id.replace(/-/g, '')}.1.abcdefabcdef@agents.test`]),
      };
    }
    const o = pick(rng, mails);
    let raw = o.raw;
    const n = int(rng, 4);
    for (let k = 0; k < n; k++) raw = pick(rng, MUTATIONS)(raw, rng);
    return { raw, to: recipientsFor(o) };
  }

  const seen: Record<string, number> = {};
  const count = (r: RecipientResult) => {
    const key =
      r.kind === 'stored'
        ? r.duplicate
          ? 'duplicate'
          : 'stored'
        : r.kind === 'refused' || r.kind === 'tempfail'
          ? `${r.kind}:${r.error.code}`
          : r.kind;
    seen[key] = (seen[key] ?? 0) + 1;
  };
  const deliver = async (road: Road, raw: Buffer, to: string): Promise<void> => {
    const [first] = await api.core.ingest.ingest(
      {
        road,
        raw,
        envelopeFrom: `w@${PARTNER}`,
        recipients: [to],
        trusted: { source: 'rspamd', dkim: [{ result: 'pass', domain: PARTNER }] },
      },
      { atomic: true },
    );
    const r = first!;
    count(r);
    if (r.kind === 'tempfail') assert.fail(`a temporary failure for content: ${r.error.code} ${r.error.message}`);
    if (r.kind === 'refused') assert.ok(r.error.smtp.code >= 500, `${r.error.code}: a refusal is permanent`);
  };

  // In-process: every mail through the one ingest entry, a few at a time.
  const queue = Array.from({ length: MAILS }, () => ({
    ...mail(),
    road: pick(rng, ['rspamd', 'smtp', 'lmtp'] as const),
  }));
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < queue.length) {
        const m = queue[next++]!;
        await deliver(m.road, m.raw, m.to);
      }
    }),
  );

  // The Rspamd road over HTTP: 200 (stored) or 422 (refused), never 500 or 503.
  for (let i = 0; i < RSPAMD_SAMPLE; i++) {
    const m = mail();
    const r = await api.core.app.inject({
      method: 'POST',
      url: '/ingress/rspamd',
      payload: m.raw,
      headers: {
        'content-type': 'message/rfc822',
        authorization: `Bearer ${TOKEN}`,
        'x-envelope-from': `w@${PARTNER}`,
        'x-envelope-to': m.to,
        'x-rspamd-auth': JSON.stringify({ dkim: [{ result: 'allow', domain: PARTNER, selector: 's1' }] }),
      },
    });
    // 200 stored, 422 refused (400: a request the plugin never makes, such as an empty body).
    assert.ok([200, 400, 422].includes(r.statusCode), `Rspamd road answered ${r.statusCode}: ${r.body}`);
  }
  // LMTP on a real socket: 250 or a 5xx per recipient, never 4xx, always one reply.
  for (let i = 0; i < LMTP_SAMPLE; i++) {
    const m = mail();
    const tr = await lmtpSend(lmtpPort, {
      from: `w@${PARTNER}`,
      to: [m.to],
      data: Buffer.concat([Buffer.from(AR), m.raw]),
    });
    const reply = tr.data[0] ?? tr.rcpt[0]!;
    assert.match(reply, /^(250|5\d\d) /, `LMTP answered ${reply}`);
  }

  // Every stored row is one original, exactly as signed, in the inbox it was signed for.
  const { rows } = await api.db.pool.query<{
    to_agent_id: string;
    from_agent: string;
    type: string;
    subject: string | null;
    correlation_id: string | null;
    body: unknown;
    mail_message_id: string;
  }>(
    "SELECT to_agent_id, from_agent, type, subject, correlation_id, body, mail_message_id FROM message WHERE channel = 'smtp' AND status <> 'queued'",
  );
  const byMid = new Map(mails.map((o) => [o.messageId, o]));
  const keys = new Set<string>();
  for (const row of rows) {
    const o = byMid.get(row.mail_message_id);
    assert.ok(o, `a stored row no original signed: ${row.mail_message_id}`);
    assert.equal(`${row.to_agent_id}@agents.test`, o.envelope.to);
    assert.equal(row.from_agent, partner.agent);
    assert.equal(row.type, o.envelope.type);
    assert.equal(row.subject, o.envelope.subject ?? `ADMP ${o.envelope.type}`);
    assert.equal(row.correlation_id, o.envelope.correlation_id ?? null);
    assert.deepEqual(row.body, o.envelope.body);
    const key = `${row.to_agent_id} ${row.mail_message_id}`;
    assert.ok(!keys.has(key), `stored twice: ${key}`);
    keys.add(key);
  }
  assert.ok(rows.length > 0 && (seen.duplicate ?? 0) > 0, `the fuzz reached storage: ${JSON.stringify(seen)}`);

  // No report was acted on: the outbound messages carry no delivery status entry.
  const { rows: out } = await api.db.pool.query<{ log: { event: string }[] }>(
    'SELECT delivery_log AS log FROM message WHERE id = ANY($1::uuid[])',
    [outbound.map((o) => o.id)],
  );
  assert.equal(out.length, outbound.length);
  for (const o of out) assert.ok(!o.log.some((e) => e.event === 'dsn'), JSON.stringify(o.log));
  assert.ok((seen['refused:report_refused'] ?? 0) > 0, 'forged reports were met');

  t.diagnostic(
    `${MAILS + RSPAMD_SAMPLE + LMTP_SAMPLE} mails in ${((performance.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(seen)}`,
  );
});
