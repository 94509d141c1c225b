import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from '../../src/core/canonical-json.js';

test('RFC 8785 §3.2.2 example: numbers, string escapes and literals', () => {
  const input = JSON.parse(String.raw`{
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  }`);
  assert.equal(
    canonicalJson(input),
    String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
  );
});

test('RFC 8785 §3.2.3 example: members sorted by UTF-16 code units', () => {
  const input = JSON.parse(
    String.raw`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
  );
  // Read the order off the string: Object.keys would move the integer-like "1" first.
  const values = [...canonicalJson(input).matchAll(/:"([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(values, [
    'Carriage Return',
    'One',
    'Control',
    'Latin Small Letter O With Diaeresis',
    'Euro Sign',
    'Emoji: Grinning Face',
    'Hebrew Letter Dalet With Dagesh',
  ]);
});

test('nested values; undefined members dropped; non-JSON values refused', () => {
  assert.equal(
    canonicalJson({ b: [{ z: 1, a: undefined, y: { d: 'x', c: -0 } }], a: '' }),
    '{"a":"","b":[{"y":{"c":0,"d":"x"},"z":1}]}',
  );
  assert.throws(() => canonicalJson({ n: Number.NaN }), /NaN/);
  assert.throws(() => canonicalJson({ n: 1n }), /bigint/);
});
