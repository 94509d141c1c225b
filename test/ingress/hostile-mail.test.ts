// Mail content that cannot be stored (NUL, lone surrogates, nesting without bound), a MIME
// part without a media type, a non-ASCII look-alike recipient: a permanent refusal naming
// the problem (5.x.x) on every road, never the "try again later" that has the sender retry
// for days; a storage fault stays temporary, and its log line carries the cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { lmtpSend } from '../helpers/lmtp-client.js';
import { startTestLmtp } from '../helpers/lmtp-server.js';
import type { RecipientResult, Road } from '../../src/ingress/delivery.js';

const MTA = 'mx.agents.test';
const PARTNER = 'agents.partner.example';
const SENDER = `w@${PARTNER}`;
/** Our MTA's verdict, which the LMTP road trusts. */
const AR = `Authentication-Results: ${MTA}; dkim=pass header.d=${PARTNER} header.s=s1 header.b=abc\r\n`;

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const api = await startTestApi({ ADMP_MTA_HOSTNAME: MTA, ADMP_POLICY_FILE: '' });
  t.after(() => api.close());
  const lmtpPort = await startTestLmtp(api, t);
  await api.db.pool.query(
    `INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ('*@${PARTNER}', '*@agents.test', 'allow')`,
  );
  const bob = await api.agent('bob');
  const partner = signer(SENDER);
  await trust(api.db.pool, partner);
  return { api, bob, partner, lmtpPort };
}

interface Captured {
  lines: Record<string, unknown>[];
  log: { info(o: object): void; warn(o: object): void };
}
const capture = (): Captured => {
  const lines: Record<string, unknown>[] = [];
  const push = (o: object) => lines.push(o as Record<string, unknown>);
  return { lines, log: { info: push, warn: push } };
};

async function ingest(api: TestApi, raw: Buffer | string, to: string, road: Road = 'rspamd', log?: Captured['log']) {
  const [r] = await api.core.ingest.ingest(
    {
      road,
      raw: Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'utf8'),
      envelopeFrom: SENDER,
      recipients: [to],
      trusted: { source: 'rspamd', dkim: [{ result: 'pass', domain: PARTNER }] },
    },
    { atomic: true, ...(log ? { log } : {}) },
  );
  return r!;
}

const refusal = (r: RecipientResult): { code: string; smtp: string; message: string } => {
  assert.equal(r.kind, 'refused', JSON.stringify(r));
  const e = (r as { error: { code: string; message: string; smtp: { code: number; enhanced: string } } }).error;
  return { code: e.code, smtp: `${e.smtp.code} ${e.smtp.enhanced}`, message: e.message };
};

/** A hand-made mail (no agent signature: these are refused before it is read). */
const handMade = (headers: string, body: string) =>
  [
    `From: ${SENDER}`,
    'To: bob@agents.test',
    `Message-ID: <${Math.random().toString(36).slice(2)}@${PARTNER}>`,
    'MIME-Version: 1.0',
    headers,
    '',
    body,
  ].join('\r\n');

const envelopeText = (json: string) => handMade('Subject: x\r\nContent-Type: text/plain; charset=utf-8', json);

test('content that cannot be stored is refused 554 5.6.0 naming the problem, on every road; nothing stored', async (t) => {
  const { api, bob, lmtpPort } = await setup(t);
  const to = bob.address;
  const deep = `${'['.repeat(5000)}1${']'.repeat(5000)}`;
  const cases: [name: string, raw: string, message: RegExp][] = [
    [
      'NUL in the envelope',
      envelopeText(`{"to":"${to}","type":"task.request","body":{"x":"a\\u0000"}}`),
      /^envelope\.body\.x contains U\+0000/,
    ],
    [
      'a lone surrogate in the envelope',
      envelopeText(`{"to":"${to}","type":"task.request","body":{"x":"\\ud800"}}`),
      /^envelope\.body\.x contains a lone surrogate U\+D800/,
    ],
    [
      'an envelope nested thousands deep',
      envelopeText(`{"to":"${to}","type":"task.request","body":${deep}}`),
      /nested deeper than 64 levels/,
    ],
    [
      'NUL in the Subject (RFC 2047)',
      handMade(
        'Subject: =?utf-8?q?a=00b?=\r\nContent-Type: text/plain',
        `{"to":"${to}","type":"task.request","body":{}}`,
      ),
      /^Subject contains U\+0000/,
    ],
  ];
  for (const [name, raw, message] of cases) {
    for (const road of ['rspamd', 'smtp'] as const) {
      const r = refusal(await ingest(api, raw, to, road));
      assert.equal(r.smtp, '554 5.6.0', `${name} (${road}): ${r.message}`);
      assert.match(r.message, message, name);
    }
    const tr = await lmtpSend(lmtpPort, { from: SENDER, to: [to], data: AR + raw });
    assert.match(tr.data[0]!, /^554 5\.6\.0 /, `${name} over LMTP: ${tr.data[0]}`);
  }
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 0);
});

test('a MIME part with an empty Content-Type is not an envelope: a permanent answer, never a tempfail', async (t) => {
  const { api, bob, partner, lmtpPort } = await setup(t);
  const signed = (await agentMail(partner, { to: bob.address, type: 'task.request', body: { n: 1 } })).toString(
    'latin1',
  );
  // An extra part with "Content-Type:" and nothing after it, in the signed mail's multipart body.
  const boundary = /boundary="?([^";\r\n]+)"?/.exec(signed)![1]!;
  const withEmpty = signed.replace(
    `--${boundary}\r\n`,
    `--${boundary}\r\nContent-Type:\r\n\r\nhello\r\n--${boundary}\r\n`,
  );
  assert.notEqual(withEmpty, signed);
  const plain = handMade(
    `Subject: x\r\nContent-Type: multipart/mixed; boundary="b1"`,
    '--b1\r\nContent-Type:\r\n\r\nhello\r\n--b1\r\nContent-Type: \r\n\r\n{}\r\n--b1--\r\n',
  );
  // The signed mail still has its one envelope part: stored. The other has none: refused as such.
  const expected = [/^250 2\.6\.0 /, /^554 5\.6\.0 no ADMP envelope/];
  for (const [i, raw] of [withEmpty, plain].entries()) {
    const r = await ingest(api, Buffer.from(raw, 'latin1'), bob.address);
    if (i === 0) assert.equal(r.kind, 'stored', JSON.stringify(r));
    else assert.deepEqual(refusal(r).code, 'invalid_envelope');
    const tr = await lmtpSend(lmtpPort, { from: SENDER, to: [bob.address], data: Buffer.from(AR + raw, 'latin1') });
    assert.match(tr.data[0]!, expected[i]!, tr.data[0]);
  }
});

test('a non-ASCII look-alike recipient (U+212A KELVIN SIGN + "im") never reaches kim, on any road', async (t) => {
  const { api, partner, lmtpPort } = await setup(t);
  const kim = await api.agent('kim');
  const raw = await agentMail(partner, { to: kim.address, type: 'task.request', body: {} });
  for (const road of ['rspamd', 'smtp', 'lmtp'] as const) {
    const r = refusal(await ingest(api, raw, '\u212Aim@agents.test', road));
    assert.match(r.smtp, /^5/, `${road}: ${r.message}`);
  }
  const tr = await lmtpSend(lmtpPort, { from: SENDER, to: ['\u212Aim@agents.test'], data: raw });
  assert.match(tr.rcpt[0]!, /^5\d\d /, `RCPT: ${tr.rcpt[0]}`);
  // A signature by a look-alike agent is not kim's partner's either.
  const lookalike = await agentMail({ ...partner, agent: `\u212Aim@${PARTNER}` } as typeof partner, {
    to: kim.address,
    type: 'task.request',
    body: {},
  }).catch((e: Error) => e);
  assert.ok(lookalike instanceof Error, 'the signer refuses a non-ASCII agent address');
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message');
  assert.equal(rows[0].n, 0);
});

test('a storage fault stays temporary (451 4.3.0), and the ingest log line names its cause', async (t) => {
  const { api, bob, partner } = await setup(t);
  const raw = await agentMail(partner, { to: bob.address, type: 'task.request', body: {} });
  // One mail stored first: the directory, policy and key caches are warm, so the fault is met storing.
  const warm = await agentMail(partner, { to: bob.address, type: 'task.warm', body: {} });
  assert.equal((await ingest(api, warm, bob.address)).kind, 'stored');
  await api.db.block(); // the database is dropped blocked when the test ends
  const c = capture();
  const r = await ingest(api, raw, bob.address, 'rspamd', c.log);
  assert.equal(r.kind, 'tempfail', JSON.stringify(r));
  assert.equal(r.kind === 'tempfail' && `${r.error.smtp.code} ${r.error.smtp.enhanced}`, '451 4.3.0');
  const line = c.lines.find((l) => l.event === 'ingest')!;
  const [result] = line.results as Record<string, unknown>[];
  assert.equal(result!.outcome, 'tempfail');
  assert.equal(result!.code, 'storage_unavailable');
  assert.equal(typeof result!.reason, 'string');
  assert.ok(typeof result!.cause === 'string' && result!.cause.length > 0, `a cause: ${JSON.stringify(result)}`);
});
