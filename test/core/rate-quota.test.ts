// Which quotas a message is counted against (src/core/rate-quota.ts): every matching
// `limit` rule, keyed by what it counts; `limit` rules never decide admission.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, ruleProblem, type Policy } from '../../src/core/policy.js';
import { quotaCharges } from '../../src/core/rate-quota.js';

const policy: Policy = {
  rules: [
    {
      id: 'partner-rate',
      from: '*@agents.partner.example',
      to: '*',
      action: 'limit',
      quota: { per: 'sender_domain', limit: 60, window_sec: 60, burst: 10 },
    },
    { id: 'loop-guard', from: '*', to: '*', action: 'limit', quota: { per: 'correlation', limit: 20, window_sec: 60 } },
    {
      id: 'tasks',
      from: '*',
      to: 'bob@*',
      types: ['task.*'],
      action: 'limit',
      quota: { per: 'pair', limit: 3, window_sec: 1 },
    },
    { from: '*', to: '*', action: 'limit', quota: { per: 'recipient', limit: 7, window_sec: 3600 } },
    { id: 'partner', from: '*@agents.partner.example', to: '*@agents.us.example', action: 'allow' },
  ],
  sasl: [],
  max_inbox: 0,
};

test('every matching limit rule counts, each by its own key', () => {
  const charges = quotaCharges(policy, {
    from: 'Worker@Agents.Partner.Example',
    to: 'bob@agents.us.example',
    type: 'task.request',
    correlation_id: 'T-1',
  });
  assert.deepEqual(
    charges.map((c) => [c.rule, c.key, c.window, c.intervalUs, c.burst]),
    [
      ['partner-rate', 'sender_domain=agents.partner.example', '60s', 1_000_000, 10],
      ['loop-guard', 'correlation=worker@agents.partner.example>T-1', '60s', 3_000_000, 20],
      ['tasks', 'pair=worker@agents.partner.example>bob@agents.us.example', '1s', 333_333, 3],
      ['rule 4 (* -> *)', 'recipient=bob@agents.us.example', '3600s', 514_285_714, 7],
    ],
  );
});

test('a rule that does not match, or a loop guard on mail outside a thread, does not count', () => {
  const charges = quotaCharges(policy, {
    from: 'alice@agents.us.example',
    to: 'carol@agents.us.example',
    type: 'note',
  });
  assert.deepEqual(
    charges.map((c) => c.key),
    ['recipient=carol@agents.us.example'],
  );
  assert.equal(
    quotaCharges({ ...policy, rules: policy.rules.slice(4) }, { from: 'a@x', to: 'b@y', type: 't' }).length,
    0,
  );
});

test('limit rules never decide: the first allow or deny rule does, or the default', () => {
  assert.deepEqual(
    decide(policy, ['agents.us.example'], {
      from: 'w@agents.partner.example',
      to: 'bob@agents.us.example',
      type: 't',
      bytes: 1,
    }),
    { allow: true, rule: 'partner' },
  );
  const d = decide(policy, ['agents.us.example'], {
    from: 'x@agents.evil.example',
    to: 'bob@agents.us.example',
    type: 't',
    bytes: 1,
  });
  assert.equal(d.allow, false);
});

test('a limit rule needs its quota; a quota belongs only on a limit rule', () => {
  assert.match(ruleProblem({ from: '*', to: '*', action: 'limit' }) ?? '', /needs its quota/);
  assert.match(
    ruleProblem({ from: '*', to: '*', action: 'deny', quota: { per: 'sender', limit: 1, window_sec: 1 } }) ?? '',
    /belongs on a limit rule/,
  );
  assert.equal(ruleProblem(policy.rules[0]!), undefined);
});
