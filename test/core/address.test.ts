// Agent address parsing (src/core/address.ts), as a table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress, tryParseAddress, tryParseRecipient } from '../../src/core/address.js';

const CASES: [input: string, want: string | undefined][] = [
  ['bob@agents.example.com', 'bob@agents.example.com'],
  ['Bob@Agents.Example.COM', 'bob@agents.example.com'],
  ['bob@agents.example.com.', 'bob@agents.example.com'],
  ['a.b_c-d@x.example', 'a.b_c-d@x.example'],
  ['9lives@x.example', '9lives@x.example'],
  [`${'a'.repeat(64)}@x.example`, `${'a'.repeat(64)}@x.example`],
  [`${'a'.repeat(65)}@x.example`, undefined],
  ['.bob@x.example', undefined],
  ['-bob@x.example', undefined],
  ['bob+tag@x.example', undefined],
  ['bob@localhost', undefined],
  ['bob@-x.example', undefined],
  ['bob@x_y.example', undefined],
  ['@x.example', undefined],
  ['bob', undefined],
  ['bob@', undefined],
  ['"bob"@x.example', undefined],
  ['b ob@x.example', undefined],
  ['bob@x.example@y.example', undefined],
  ['bøb@x.example', undefined],
  // Not ASCII, even where Unicode case mapping would give ASCII (K KELVIN SIGN → "k",
  // İ → "i̇", ſ → "S" upper-cased): one rule, refused, never folded into another agent.
  ['\u212Aim@x.example', undefined],
  ['kim@x.\u212Aample', undefined],
  ['\u0130nfo@x.example', undefined],
  ['\u017Fam@x.example', undefined],
  ['ki\uFF4D@x.example', undefined],
];

for (const [input, want] of CASES) {
  test(`address ${JSON.stringify(input)} → ${want ?? 'refused'}`, () => {
    assert.equal(tryParseAddress(input)?.address, want);
    if (want === undefined) assert.throws(() => parseAddress(input, 'to'), /to: .* is not an agent address/);
  });
}

// Recipients may be plus-addressed (RFC 5233): the agent, and the detail after the first "+".
const RECIPIENTS: [input: string, agent: string | undefined, detail?: string][] = [
  ['bob@x.example', 'bob@x.example'],
  ['bob+tag@x.example', 'bob@x.example', 'tag'],
  ['Bob+Tag.2026=a-b_c@X.example', 'bob@x.example', 'Tag.2026=a-b_c'],
  ['bob+a+b@x.example', undefined], // a second "+" is outside the detail's safe set
  ['bob+@x.example', undefined],
  ['+tag@x.example', undefined],
  ['bob+a b@x.example', undefined],
  ['bob+<x>@x.example', undefined],
  [`bob+${'d'.repeat(65)}@x.example`, undefined],
  ['bob+tag@localhost', undefined],
  ['bob@x+y.example', undefined],
];

for (const [input, agent, detail] of RECIPIENTS) {
  test(`recipient ${JSON.stringify(input)} → ${agent ?? 'refused'}${detail ? ` + ${detail}` : ''}`, () => {
    const r = tryParseRecipient(input);
    assert.equal(r?.agent.address, agent);
    assert.equal(r?.detail, detail);
  });
}
