// The published test vectors (test/signature/vectors.json, shown verbatim in
// docs/protocol.md) recomputed from their inputs with two Ed25519 implementations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import * as ed from '@noble/ed25519';
import {
  bodyDigest,
  publicKeyFromSeed,
  signBase,
  signatureBase,
  stalenessOf,
  validUntil,
} from '../../src/core/signature.js';
import { signatureBase as portableBase, signatureHeadersNoble } from '../../src/core/signature-base.js';
import { keyThumbprint } from '../../src/keys/private-key.js';
import { ourJwks } from '../../src/keys/jwks.js';
import { agentKeyTxtRecords } from '../../src/keys/dns.js';
import { buildSignedMessage } from '../../src/mail/signed-message.js';
import type { AgentKeyRow } from '../../src/db/keys.js';

const text = readFileSync(new URL('./vectors.json', import.meta.url), 'utf8');
const vectors = JSON.parse(text) as {
  key: { seed_hex: string; public_key_hex: string; public_key_base64: string; jwk_x: string; kid: string };
  vectors: {
    name: string;
    inputs: {
      agent: string;
      kid: string;
      timestamp: number;
      expires?: number;
      message_id: string;
      to: string;
      from: string;
      subject: string;
      type: string;
      correlation_id: string | null;
      envelope_json: string;
    };
    body_sha256: string;
    signature_base: string;
    signature: string;
  }[];
  freshness: {
    settings: { clock_skew_sec: number; validity_sec: number; max_validity_sec: number };
    cases: {
      name: string;
      timestamp: number;
      expires: number | null;
      received_at: number | null;
      now: number;
      valid_until: number;
      result: 'fresh' | 'signature_expired';
    }[];
  };
};
const seed = Buffer.from(vectors.key.seed_hex, 'hex');
const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

test('docs/protocol.md shows vectors.json verbatim', () => {
  assert.ok(
    doc.includes(`\`\`\`json\n${text.trim()}\n\`\`\``),
    'docs/protocol.md must contain test/signature/vectors.json in a ```json block',
  );
});

test('the examples in docs/protocol.md are what the code produces for the vector key', async () => {
  const i = vectors.vectors[0]!.inputs;
  const env = JSON.parse(i.envelope_json) as { to: string; type: string; subject: string; body: unknown };
  const m = await buildSignedMessage(
    env,
    { agent: i.agent, kid: i.kid, seed },
    { now: i.timestamp, messageId: i.message_id },
  );
  assert.equal(m.envelopeBytes.toString('utf8'), i.envelope_json);
  const headers = m.eml.toString('utf8').split('\r\n\r\n')[0]!;
  assert.equal(/^X-Agent-Signature:\s+(\S+)$/m.exec(headers)?.[1], vectors.vectors[0]!.signature);
  // The doc's example mail differs only in its random MIME boundary.
  const boundary = /boundary="([^"]+)"/.exec(headers)![1]!;
  const example = m.eml
    .toString('utf8')
    .replaceAll(boundary, '--_NmP-db6f659bef0acb12-Part_1')
    .replace(/\r\n/g, '\n')
    .trim();
  assert.ok(doc.includes(example), 'section 3 example mail');
  const row = {
    domain: 'agents.a.example',
    kid: vectors.key.kid,
    agent: i.agent,
    publicKey: Buffer.from(vectors.key.public_key_hex, 'hex'),
    source: 'local',
  } as AgentKeyRow;
  assert.ok(doc.includes(JSON.stringify(ourJwks([row]), null, 2)), 'section 7.3 JWKS example');
  const txt = agentKeyTxtRecords([row])[0]!;
  assert.ok(doc.includes(`${txt.name}. 300 IN TXT "${txt.text}"`), 'section 7.3 TXT example');
});

test('the key: RFC 8032 §7.1 TEST 1 seed, its public key in every published form, RFC 7638 kid', async () => {
  const pub = Buffer.from(publicKeyFromSeed(seed));
  assert.equal(pub.toString('hex'), vectors.key.public_key_hex);
  assert.equal(pub.toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'); // RFC 8032 §7.1
  assert.equal(Buffer.from(ed.getPublicKey(seed)).toString('hex'), vectors.key.public_key_hex);
  assert.equal(pub.toString('base64'), vectors.key.public_key_base64);
  assert.equal(pub.toString('base64url'), vectors.key.jwk_x);
  assert.equal(await keyThumbprint(pub), vectors.key.kid);
});

for (const v of vectors.vectors) {
  test(`vector ${v.name}: base, digest and signature agree with node:crypto and @noble/ed25519`, () => {
    const i = v.inputs;
    const body = Buffer.from(i.envelope_json, 'utf8');
    assert.equal(bodyDigest(body), v.body_sha256);
    const fields = {
      agent: i.agent,
      kid: i.kid,
      timestamp: i.timestamp,
      ...(i.expires !== undefined ? { expires: i.expires } : {}),
      messageId: i.message_id,
      to: i.to,
      from: i.from,
      subject: i.subject,
      type: i.type,
      correlationId: i.correlation_id,
      body,
    };
    const base = signatureBase(fields);
    assert.equal(base, v.signature_base);
    // The portable module the SDK signs with (@noble/hashes, no node:crypto) gives the same base and signature.
    assert.equal(portableBase(fields), v.signature_base);
    assert.equal(signatureHeadersNoble(fields, seed)['X-Agent-Signature'], v.signature);
    // Ed25519 is deterministic (RFC 8032 §5.1.6): both implementations give the same bytes.
    assert.equal(signBase(seed, base, 'node'), v.signature);
    assert.equal(signBase(seed, base, 'noble'), v.signature);
    const sig = Buffer.from(v.signature, 'base64');
    const msg = Buffer.from(v.signature_base, 'utf8');
    const pub = Buffer.from(vectors.key.public_key_hex, 'hex');
    assert.equal(ed.verify(sig, msg, pub), true);
    assert.equal(
      nodeVerify(
        null,
        msg,
        createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: vectors.key.jwk_x }, format: 'jwk' }),
        sig,
      ),
      true,
    );
    // One changed byte of the base fails with both.
    const tampered = Buffer.from(v.signature_base.replace('"v":"admp-sig-v1"', '"v":"admp-sig-v2"'), 'utf8');
    assert.equal(ed.verify(sig, tampered, pub), false);
    assert.equal(
      nodeVerify(
        null,
        tampered,
        createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: vectors.key.jwk_x }, format: 'jwk' }),
        sig,
      ),
      false,
    );
  });
}

// The freshness rule of docs/protocol.md §6.3, case by case: the receipt by our MTA (never
// later than now) against the validity's end (the signer's X-Agent-Expires capped, or the
// default after the timestamp) plus the skew; a future timestamp bounded by the skew.
for (const c of vectors.freshness.cases) {
  test(`freshness: ${c.name}`, () => {
    const s = vectors.freshness.settings;
    const o = {
      now: c.now,
      clockSkewSec: s.clock_skew_sec,
      validitySec: s.validity_sec,
      maxValiditySec: s.max_validity_sec,
      receivedAt: c.received_at ?? undefined,
    };
    assert.equal(validUntil(c.timestamp, c.expires ?? undefined, o), c.valid_until);
    assert.equal(stalenessOf(c.timestamp, c.expires ?? undefined, o) ? 'signature_expired' : 'fresh', c.result);
  });
}
