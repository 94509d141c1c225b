// Policy decisions (src/core/policy.ts), as a table: first matching rule decides;
// without one, local senders are allowed and external ones refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, glob, saslMayActAs, type Policy } from '../../src/core/policy.js';

const OURS = ['agents.us.example'];
const policy: Policy = {
  rules: [
    { id: 'deny-spam', from: '*@agents.partner.example', to: '*', types: ['spam.*'], action: 'deny' },
    { id: 'small', from: 'tiny@agents.partner.example', to: '*@agents.us.example', max_bytes: 100, action: 'allow' },
    { id: 'urgent', from: '*@agents.other.example', to: 'ops@*', subject: 'URGENT*', action: 'allow' },
    { id: 'partner', from: '*@agents.partner.example', to: '*@agents.us.example', action: 'allow' },
  ],
  sasl: [{ user: 'Mailer@us.example', agents: ['bot-*@agents.us.example'] }],
  max_inbox: 0,
};

const CASES: [
  name: string,
  from: string,
  to: string,
  type: string,
  subject: string | null,
  bytes: number,
  want: string,
][] = [
  ['a rule allows', 'p@agents.partner.example', 'bob@agents.us.example', 'task.request', null, 10, 'allow partner'],
  [
    'first match wins: deny',
    'p@agents.partner.example',
    'bob@agents.us.example',
    'spam.x',
    null,
    10,
    'deny denied_by_rule',
  ],
  [
    'size cap of the matching rule',
    'tiny@agents.partner.example',
    'bob@agents.us.example',
    't',
    null,
    101,
    'deny too_large',
  ],
  ['size within the cap', 'tiny@agents.partner.example', 'bob@agents.us.example', 't', null, 100, 'allow small'],
  ['subject glob matches', 'x@agents.other.example', 'ops@agents.us.example', 't', 'URGENT: disk', 1, 'allow urgent'],
  ['subject glob misses', 'x@agents.other.example', 'ops@agents.us.example', 't', 'hello', 1, 'deny unknown_sender'],
  [
    'no subject never matches a subject rule',
    'x@agents.other.example',
    'ops@agents.us.example',
    't',
    null,
    1,
    'deny unknown_sender',
  ],
  [
    'local sender by default',
    'alice@agents.us.example',
    'bob@agents.us.example',
    't',
    null,
    1,
    'allow default: local sender',
  ],
  [
    'local sender, domain case-folded',
    'alice@AGENTS.US.EXAMPLE',
    'bob@agents.us.example',
    't',
    null,
    1,
    'allow default: local sender',
  ],
  ['unknown external sender refused', 'eve@evil.example', 'bob@agents.us.example', 't', null, 1, 'deny unknown_sender'],
  ['globs are case-insensitive', 'P@AGENTS.PARTNER.EXAMPLE', 'bob@agents.us.example', 'task', null, 1, 'allow partner'],
];

for (const [name, from, to, type, subject, bytes, want] of CASES) {
  test(`policy: ${name}`, () => {
    const d = decide(policy, OURS, { from, to, type, subject, bytes });
    assert.equal(d.allow ? `allow ${d.rule}` : `deny ${d.reason}`, want);
  });
}

test('glob: * and ? only; every other character is literal', () => {
  for (const [pattern, input, want] of [
    ['*@a.example', 'x@a.example', true],
    ['*@a.example', 'x@aXexample', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['(x)+[y]', '(x)+[y]', true],
    ['a.b', 'axb', false],
  ] as const)
    assert.equal(glob(pattern).test(input), want, `${pattern} ~ ${input}`);
});

test('SASL: a login may act only as the agents its mapping names', () => {
  assert.equal(saslMayActAs(policy, 'mailer@us.example', 'bot-1@agents.us.example'), true);
  assert.equal(saslMayActAs(policy, 'mailer@us.example', 'alice@agents.us.example'), false);
  assert.equal(saslMayActAs(policy, 'other@us.example', 'bot-1@agents.us.example'), false);
});

test('tenants are apart by default: a tenant reaches its own tenant and the plain domains; another tenant needs a rule', () => {
  const domains = ['agents.us.example', '*.t.us.example'];
  const d = (from: string, to: string) => ({ from, to, type: 't', subject: null, bytes: 1 });
  const empty: Policy = { rules: [], sasl: [], max_inbox: 0 };
  assert.equal(decide(empty, domains, d('a@acme.t.us.example', 'b@acme.t.us.example')).allow, true);
  assert.equal(decide(empty, domains, d('a@acme.t.us.example', 'b@agents.us.example')).allow, true);
  assert.equal(decide(empty, domains, d('a@agents.us.example', 'b@acme.t.us.example')).allow, true);
  assert.equal(decide(empty, domains, d('a@acme.t.us.example', 'b@globex.t.us.example')).allow, false);
  assert.equal(
    decide(empty, domains, d('a@x.y.t.us.example', 'b@agents.us.example')).allow,
    false,
    'two labels: not ours',
  );
  const rule: Policy = {
    ...empty,
    rules: [{ from: '*@acme.t.us.example', to: '*@globex.t.us.example', action: 'allow' }],
  };
  assert.equal(decide(rule, domains, d('a@acme.t.us.example', 'b@globex.t.us.example')).allow, true);
});
