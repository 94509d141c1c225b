// The replay key of signed mail (src/core/replay.ts): SHA-256 of the RFC 8785 array
// ["admp-replay-v1", agent, Message-ID]. The expected digests were computed independently
// (Python json + hashlib).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replayKey } from '../../src/core/replay.js';
import { validUntil } from '../../src/core/signature.js';

test('replay key vectors; the agent compares case-insensitively, the Message-ID without its brackets', () => {
  const want = '942344ce2555498d5a98ccbbb872016c72dc37e1901113d181e9319b253742d7';
  assert.equal(replayKey('w@agents.partner.example', 'm1@agents.partner.example'), want);
  assert.equal(replayKey(' W@Agents.Partner.Example ', ' <m1@agents.partner.example> '), want);
  assert.equal(
    replayKey('w@agents.partner.example', '<m2@agents.partner.example>'),
    'fc86ffac19d3398842baeae9c02bce09aa8a191d8bfdae0be6bc0410d9cebf52',
  );
  assert.notEqual(replayKey('v@agents.partner.example', 'm1@agents.partner.example'), want, 'another agent');
});

test('a replay entry is kept until the signature could no longer be accepted', () => {
  const o = { now: 1_700_000_000, clockSkewSec: 300, validitySec: 432_000, maxValiditySec: 604_800 };
  assert.equal(validUntil(1_700_000_000, undefined, o), 1_700_432_300);
  assert.equal(validUntil(1_700_000_000, undefined, { ...o, validitySec: 0 }), 1_700_000_300);
  assert.equal(validUntil(1_700_000_000, 1_700_003_600, o), 1_700_003_900, "the signer's X-Agent-Expires");
  assert.equal(validUntil(1_700_000_000, 1_800_000_000, o), 1_700_605_100, 'capped');
});
