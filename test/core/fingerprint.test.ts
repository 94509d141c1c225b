// The dedupe fingerprint (src/core/fingerprint.ts): SHA-256 of the RFC 8785 array
// ["admp-fp-v1", from, to, type, subject, correlation_id, unique_id, body]. The
// expected digests were computed independently (Python json + hashlib).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint, type FingerprintInput } from '../../src/core/fingerprint.js';
import { canonicalJson } from '../../src/core/canonical-json.js';

const base: FingerprintInput = {
  from: 'alice@agents.example',
  to: 'bob@agents.example',
  type: 'task.request',
  correlation_id: 'c-1',
  unique_id: 'mid:<m1@agents.example>',
  body: { b: [1, 2], a: 1 },
};

const VECTORS: [name: string, input: FingerprintInput, sha256: string][] = [
  ['mail, no subject, keys out of order', base, '2466bbd4396541fd4141047aa3318529931b1501685618ed0d060cde6ed6e4c9'],
  [
    'HTTP send with a subject and no correlation id',
    { ...base, subject: 'Hi', correlation_id: undefined, unique_id: 'idem:k1', body: 'x' },
    '69ce03e65b2f561530824fa3fb965e23fb058e7930f6cbf6d64eb5149f793964',
  ],
];

for (const [name, input, sha256] of VECTORS)
  test(`fingerprint vector: ${name}`, () => {
    assert.equal(fingerprint(input), sha256);
    // The same digest when the caller hands the body's canonical JSON in (the mailbox does).
    assert.equal(fingerprint(input, canonicalJson(input.body)), sha256);
  });

test('fingerprint: addresses compare case-insensitively; every other field counts', () => {
  const fp = fingerprint(base);
  assert.equal(fingerprint({ ...base, from: 'Alice@Agents.Example', to: 'BOB@agents.example' }), fp);
  for (const changed of [
    { type: 'task.other' },
    { subject: 'x' },
    { correlation_id: 'c-2' },
    { unique_id: 'mid:<m2@agents.example>' },
    { body: { a: 1, b: [2, 1] } },
  ])
    assert.notEqual(fingerprint({ ...base, ...changed }), fp, JSON.stringify(changed));
});
