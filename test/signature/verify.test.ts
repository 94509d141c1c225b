// Signing a whole .eml with buildSignedMessage, reading it back as the ingress
// pipeline does (mailparser + readSignedMail) and verifying it; then the ways a
// message can be forged, replayed or damaged in transit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { loadConfig } from '../../src/config.js';
import {
  publicKeyFromSeed,
  signatureHeaders,
  type AgentPublicKey,
  type KeyLookup,
  type VerifyResult,
} from '../../src/core/signature.js';
import { buildSignedMessage } from '../../src/mail/signed-message.js';
import type { Envelope } from '../../src/core/envelope.js';
import { outcome as failure, verifyEml } from './verify-eml.js';

const NOW = 1767225600;
const seed = Buffer.alloc(32, 1);
const otherSeed = Buffer.alloc(32, 2);
const KID = 'alice-2026';
const ALICE = 'alice@agents.a.example';
const BOB = 'bob@agents.b.example';
const key = (over: Partial<AgentPublicKey> = {}): AgentPublicKey => ({
  domain: 'agents.a.example',
  kid: KID,
  agent: ALICE,
  publicKey: publicKeyFromSeed(seed),
  source: 'jwks',
  ...over,
});

/** A resolver over a fixed table, keyed (domain, kid) as the real one is. */
const table =
  (...keys: AgentPublicKey[]) =>
  async (domain: string, kid: string): Promise<KeyLookup> => {
    const k = keys.find((x) => x.domain === domain && x.kid === kid);
    return k ? { status: 'found', key: k } : { status: 'not_found' };
  };

const envelope: Envelope = {
  to: BOB,
  type: 'task.request',
  subject: 'Grüße: the quarterly numbers, please',
  body: { quarter: '2026-Q1', note: 'ü'.repeat(80) },
  correlation_id: 'c-1',
};

async function sign(env: Envelope = envelope, impl: 'node' | 'noble' = 'node'): Promise<string> {
  return (await buildSignedMessage(env, { agent: ALICE, kid: KID, seed }, { now: NOW, impl })).eml.toString('utf8');
}

interface Check {
  rcpt?: string;
  now?: number;
  skew?: number;
  validitySec?: number;
  maxValiditySec?: number;
  receivedAt?: number;
  resolve?: (d: string, k: string) => Promise<KeyLookup>;
}
const check = (eml: string, o: Check = {}): Promise<VerifyResult> =>
  verifyEml(eml, {
    rcpt: o.rcpt ?? BOB,
    now: o.now ?? NOW,
    clockSkewSec: o.skew ?? loadConfig({}).clockSkewSec,
    validitySec: o.validitySec,
    maxValiditySec: o.maxValiditySec,
    receivedAt: o.receivedAt,
    resolveKey: o.resolve ?? table(key()),
  });

/** Replaces the (first, unfolded) header `name` with `line`. */
const setHeader = (eml: string, name: string, line: string): string =>
  eml.replace(new RegExp(`^${name}:.*(\\r\\n[ \\t].*)*\\r\\n`, 'im'), `${line}\r\n`);

test('a signed message verifies, with either signing implementation', async () => {
  for (const impl of ['node', 'noble'] as const) {
    const r = await check(await sign(envelope, impl));
    assert.deepEqual(
      r.ok && { agent: r.agent, kid: r.kid, keySource: r.keySource, timestamp: r.timestamp },
      { agent: ALICE, kid: KID, keySource: 'jwks', timestamp: NOW },
      JSON.stringify(r),
    );
  }
});

test('what MTAs do in transit does not break it: refolded and re-encoded headers', async () => {
  const eml = await sign();
  const sig = /^X-Agent-Signature:\s*([A-Za-z0-9+/=\s]+?)\r\n(?![ \t])/im.exec(eml)![1]!.replace(/\s+/g, '');
  const before = eml;
  let moved = setHeader(
    eml,
    'X-Agent-Signature',
    `X-Agent-Signature: ${sig.slice(0, 30)}\r\n\t${sig.slice(30, 60)}\r\n ${sig.slice(60)}`,
  );
  // The same Subject as one base64 encoded-word (RFC 2047 §4.1) instead of nodemailer's Q words.
  moved = setHeader(moved, 'Subject', `Subject: =?utf-8?B?${Buffer.from(envelope.subject!).toString('base64')}?=`);
  moved = setHeader(moved, 'X-Agent-ID', 'x-agent-id:    Alice@Agents.A.Example  ');
  assert.match(moved, /^Subject: =\?utf-8\?B\?/m);
  assert.match(moved, /^x-agent-id: {4}Alice/m);
  assert.match(moved, /^\t[A-Za-z0-9+/]{30}\r\n [A-Za-z0-9+/]{26}==\r\n/m);
  assert.notEqual(moved, before);
  assert.equal(failure(await check(moved)), 'ok');
});

test('tampered headers or body fail as signature_invalid', async () => {
  const eml = await sign();
  const cases: [string, string][] = [
    ['subject', setHeader(eml, 'Subject', 'Subject: Grüße: the quarterly numbers, NOW')],
    ['timestamp', setHeader(eml, 'X-Agent-Timestamp', `X-Agent-Timestamp: ${NOW + 1}`)],
    ['message-id', setHeader(eml, 'Message-ID', 'Message-ID: <another@agents.a.example>')],
    [
      'from',
      setHeader(
        setHeader(eml, 'From', 'From: mallory@agents.a.example'),
        'X-Agent-ID',
        'X-Agent-ID: mallory@agents.a.example',
      ),
    ],
    ['kid', setHeader(eml, 'X-Agent-KID', 'X-Agent-KID: other')],
  ];
  const json = /filename=admp-envelope\.json\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n--/.exec(eml)![1]!;
  const forged = Buffer.from(json, 'base64').toString('utf8').replace('2026-Q1', '2026-Q2');
  cases.push(['body', eml.replace(json, Buffer.from(forged).toString('base64'))]);
  const resolve = table(
    key(),
    key({ kid: 'other', publicKey: publicKeyFromSeed(otherSeed) }),
    key({ agent: 'mallory@agents.a.example' }),
  );
  for (const [what, bad] of cases) {
    assert.notEqual(bad, eml, what);
    const r = await check(bad, { resolve: what === 'from' ? table(key({ agent: null })) : resolve });
    assert.deepEqual(r, { ok: false, code: 'signature_invalid', reason: 'signature does not verify' }, what);
  }
});

test('From must be the agent of X-Agent-ID', async () => {
  const r = await check(setHeader(await sign(), 'From', 'From: Mallory <mallory@agents.a.example>'));
  assert.deepEqual(r, {
    ok: false,
    code: 'signature_invalid',
    reason: 'From must be the single address in X-Agent-ID',
  });
});

test('a copy delivered to another recipient is refused (no DKIM-style replay)', async () => {
  const eml = await sign();
  const r = await check(eml, { rcpt: 'carol@agents.b.example' });
  assert.deepEqual(r, {
    ok: false,
    code: 'signature_invalid',
    reason: 'the envelope recipient is not the signed recipient',
  });
  // Even when the forger also rewrites the JSON envelope's `to`, the body hash breaks.
  const json = /filename=admp-envelope\.json\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n--/.exec(eml)![1]!;
  const moved = eml.replace(
    json,
    Buffer.from(Buffer.from(json, 'base64').toString('utf8').replace(BOB, 'carol@agents.b.example')).toString('base64'),
  );
  assert.equal(failure(await check(moved, { rcpt: 'carol@agents.b.example' })), 'signature_invalid');
  assert.equal(
    failure(await check(eml, { rcpt: 'BOB@Agents.B.Example' })),
    'ok',
    'addresses compare case-insensitively',
  );
});

test('replay window: ±clockSkewSec around the signer timestamp, configurable', async () => {
  const eml = await sign();
  const skew = loadConfig({}).clockSkewSec;
  assert.equal(skew, 300);
  assert.equal(failure(await check(eml, { now: NOW + skew })), 'ok');
  assert.equal(failure(await check(eml, { now: NOW - skew })), 'ok');
  assert.equal(failure(await check(eml, { now: NOW + skew + 1 })), 'signature_expired');
  assert.equal(failure(await check(eml, { now: NOW - skew - 1 })), 'signature_expired');
  const wide = loadConfig({ ADMP_CLOCK_SKEW_SEC: '900' }).clockSkewSec;
  assert.equal(failure(await check(eml, { now: NOW + 600, skew: wide })), 'ok');
  assert.equal(failure(await check(eml, { now: NOW + 901, skew: wide })), 'signature_expired');
});

test('a validity chosen by the signer (X-Agent-Expires): signed, at most once, honoured up to the cap', async () => {
  const hour = (
    await buildSignedMessage(envelope, { agent: ALICE, kid: KID, seed }, { now: NOW, validitySec: 3600 })
  ).eml.toString('utf8');
  assert.match(hour, new RegExp(`^X-Agent-Expires: ${NOW + 3600}\r$`, 'm'));
  const d = loadConfig({});
  assert.deepEqual([d.signatureValiditySec, d.signatureMaxValiditySec], [432000, 604800]);
  const at = (now: number, receivedAt?: number, over: Check = {}) =>
    check(hour, { now, receivedAt, validitySec: d.signatureValiditySec, maxValiditySec: 604800, ...over });
  const ok = await at(NOW + 3600 + 300);
  assert.deepEqual(ok.ok && [ok.expires, ok.validUntil], [NOW + 3600, NOW + 3900], 'valid until expiry + skew');
  assert.equal(failure(await at(NOW + 3901)), 'signature_expired', 'the default 5 days do not extend it');
  assert.equal(failure(await at(NOW + 86400, NOW + 60)), 'ok', 'our MTA took it in time; we deferred it a day');
  // The signer cannot widen it past the cap, nor change it after signing.
  const year = (
    await buildSignedMessage(envelope, { agent: ALICE, kid: KID, seed }, { now: NOW, validitySec: 365 * 86400 })
  ).eml.toString('utf8');
  assert.equal(failure(await check(year, { now: NOW + 604800 + 300, maxValiditySec: 604800 })), 'ok');
  assert.equal(failure(await check(year, { now: NOW + 604800 + 301, maxValiditySec: 604800 })), 'signature_expired');
  const widened = setHeader(hour, 'X-Agent-Expires', `X-Agent-Expires: ${NOW + 7200}`);
  assert.equal(failure(await at(NOW + 3700)), 'ok');
  assert.equal(failure(await check(widened, { now: NOW + 3700 })), 'signature_invalid');
  const removed = hour.replace(/^X-Agent-Expires:.*\r\n/m, '');
  assert.equal(failure(await check(removed, { now: NOW, validitySec: 432000 })), 'signature_invalid');
  assert.match(JSON.stringify(await check(`X-Agent-Expires: ${NOW + 3600}\r\n${hour}`)), /must appear at most once/);
  for (const bad of ['-1', '1.5e9', ''])
    assert.match(
      JSON.stringify(await check(setHeader(hour, 'X-Agent-Expires', `X-Agent-Expires: ${bad}`))),
      /X-Agent-Expires must be integer Unix seconds/,
      bad,
    );
  const before = setHeader(hour, 'X-Agent-Expires', `X-Agent-Expires: ${NOW - 1}`);
  assert.match(JSON.stringify(await check(before)), /X-Agent-Expires is before X-Agent-Timestamp/);
  // Without the header the default validity applies, and the result says until when.
  const plain = await check(await sign(), { now: NOW + 60, validitySec: 432000 });
  assert.deepEqual(plain.ok && [plain.expires, plain.validUntil], [undefined, NOW + 432300]);
});

test('exactly one of each signature header, one From, one Message-ID, at most one Subject', async () => {
  const eml = await sign();
  const prepend = (line: string): string => `${line}\r\n${eml}`;
  for (const line of [
    'X-Agent-ID: mallory@agents.a.example',
    `X-Agent-ID: ${ALICE}`,
    'X-Agent-KID: other',
    `X-Agent-Timestamp: ${NOW}`,
    'X-Agent-Signature: AAAA',
    'From: mallory@agents.a.example',
    'Subject: hello',
    'Message-ID: <x@agents.a.example>',
  ]) {
    const r = await check(prepend(line));
    assert.equal(failure(r), 'signature_invalid', `${line}: ${JSON.stringify(r)}`);
    assert.match((r as { reason: string }).reason, /must appear/);
  }
});

test('missing signature headers: signature_missing', async () => {
  const eml = await sign();
  const none = eml.replace(/^X-Agent-[A-Za-z]+:.*(\r\n[ \t].*)*\r\n/gim, '');
  assert.deepEqual(await check(none), {
    ok: false,
    code: 'signature_missing',
    reason: 'missing x-agent-id, x-agent-kid, x-agent-timestamp, x-agent-signature',
  });
  const noSig = eml.replace(/^X-Agent-Signature:.*(\r\n[ \t].*)*\r\n/im, '');
  assert.deepEqual(await check(noSig), { ok: false, code: 'signature_missing', reason: 'missing x-agent-signature' });
});

test('keys: unknown kid, unreachable key source, key of another domain or agent, wrong key', async () => {
  const eml = await sign();
  assert.equal(failure(await check(eml, { resolve: table() })), 'unknown_key');
  const down = async (): Promise<KeyLookup> => ({ status: 'unavailable', reason: 'connect ECONNREFUSED' });
  assert.deepEqual(await check(eml, { resolve: down }), {
    ok: false,
    code: 'key_unavailable',
    reason: `key ${KID} of agents.a.example: connect ECONNREFUSED`,
  });
  const throwing = async (): Promise<KeyLookup> => {
    throw new Error('boom');
  };
  assert.equal(failure(await check(eml, { resolve: throwing })), 'key_unavailable');
  // A resolver that answered for another domain is not believed.
  const liar = async (): Promise<KeyLookup> => ({
    status: 'found',
    key: key({ domain: 'agents.evil.example', agent: null }),
  });
  assert.equal(failure(await check(eml, { resolve: liar })), 'unknown_key');
  assert.equal(failure(await check(eml, { resolve: table(key({ agent: 'bob@agents.a.example' })) })), 'unknown_key');
  assert.equal(
    failure(await check(eml, { resolve: table(key({ agent: null })) })),
    'ok',
    'a domain-wide key signs for any agent of its domain',
  );
  assert.equal(
    failure(await check(eml, { resolve: table(key({ publicKey: publicKeyFromSeed(otherSeed) })) })),
    'signature_invalid',
  );
});

test('malformed header values are refused before any key lookup', async () => {
  const eml = await sign();
  let lookups = 0;
  const counting = async (d: string, k: string): Promise<KeyLookup> => {
    lookups++;
    return table(key())(d, k);
  };
  for (const [name, line] of [
    ['X-Agent-ID', 'X-Agent-ID: not an address'],
    ['X-Agent-KID', 'X-Agent-KID: a/b'],
    ['X-Agent-Timestamp', 'X-Agent-Timestamp: 1767225600.5'],
    ['X-Agent-Signature', 'X-Agent-Signature: AAAA'],
  ] as const) {
    assert.equal(failure(await check(setHeader(eml, name, line), { resolve: counting })), 'signature_invalid', name);
  }
  assert.equal(lookups, 0);
});

test('the envelope may be the text body instead of an application/json part', async () => {
  const json = '{"body":{"n":1},"to":"bob@agents.b.example","type":"ping"}';
  const headers = signatureHeaders(
    {
      agent: ALICE,
      kid: KID,
      timestamp: NOW,
      messageId: '<t1@agents.a.example>',
      to: BOB,
      from: ALICE,
      subject: 'ping',
      type: 'ping',
      correlationId: null,
      body: Buffer.from(json),
    },
    seed,
  );
  const eml = await new MailComposer({
    from: ALICE,
    to: BOB,
    subject: 'ping',
    messageId: '<t1@agents.a.example>',
    headers,
    text: `${json}\r\n\r\n`,
  })
    .compile()
    .build();
  assert.equal(failure(await check(eml.toString('utf8'))), 'ok');
});
