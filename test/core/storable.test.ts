// What client JSON may hold (src/core/storable.ts): table cases for the text check, whose
// common case (no surrogate at all) skips the pairing regex, and for the walk's paths and depth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_JSON_DEPTH, mayBeUnstorableJsonText, unstorableJson, unstorableText } from '../../src/core/storable.js';

test('text: NUL and lone surrogates are refused wherever they sit, pairs and other text pass', () => {
  const cases: [string, RegExp | undefined][] = [
    ['', undefined],
    ['plain ascii', undefined],
    ['é ü ß – “quotes” 日本語', undefined],
    ['\ud83d\ude00', undefined],
    ['a\ud83d\ude00b\ud800\udc00', undefined],
    ['\u0000', /U\+0000/],
    ['abc\u0000', /U\+0000/],
    ['\ud800', /lone surrogate U\+D800/],
    ['x\udbff', /lone surrogate U\+DBFF/],
    ['\udc00x', /lone surrogate U\+DC00/],
    ['\ud83d\ude00\udfff', /lone surrogate U\+DFFF/],
    ['\ude00\ud83d', /lone surrogate U\+DE00/],
    ['ok\ud83d\ude00 then \ud83d alone', /lone surrogate U\+D83D/],
  ];
  for (const [s, want] of cases) {
    const why = unstorableText(s);
    if (want) assert.match(why ?? '', want, JSON.stringify(s));
    else assert.equal(why, undefined, JSON.stringify(s));
  }
});

test('json: the first problem is named by its path; depth up to the limit passes', () => {
  const nested = (n: number): unknown => (n === 0 ? 'leaf' : [nested(n - 1)]);
  const cases: [unknown, string | undefined][] = [
    [{ a: [1, 'x', { b: null, c: true }] }, undefined],
    [{ a: [1, 'x', { 'b c': 'y\u0000' }] }, 'body.a[2]["b c"] contains U+0000 (NUL), which cannot be stored'],
    [{ ok: 'fine', ['k\ud800']: 1 }, 'body has a key that contains a lone surrogate U+D800, which is not Unicode text'],
    [nested(MAX_JSON_DEPTH), undefined],
    [nested(MAX_JSON_DEPTH + 1), `body${'[0]'.repeat(MAX_JSON_DEPTH)} is nested deeper than ${MAX_JSON_DEPTH} levels`],
  ];
  for (const [value, want] of cases) assert.equal(unstorableJson(value, 'body'), want);
  // The path of one call does not leak into the next.
  assert.equal(unstorableJson({ z: ['\u0000'] }, 'm'), 'm.z[0] contains U+0000 (NUL), which cannot be stored');
});

test('json text: the walk is skipped only for text that cannot hold a refused value', () => {
  const nested = (n: number): string => '['.repeat(n) + ']'.repeat(n);
  const cases: [string, boolean][] = [
    ['{"to":"a@b.c","body":{"x":[1,2,{"y":"é 日本 \ud83d\ude00"}]}}', false],
    ['"\\\\u0000 as plain text"', true], // a backslash, then u0000: walked, and found storable
    ['"\\u0000"', true],
    ['"a\\ud800"', true],
    ['{"\\u0000":1}', true],
    [nested(MAX_JSON_DEPTH - 1), false],
    [nested(MAX_JSON_DEPTH), true],
    [nested(MAX_JSON_DEPTH + 1), true],
    [Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]).toString('utf8'), false], // an encoded surrogate decodes to U+FFFD
  ];
  for (const [text, want] of cases) assert.equal(mayBeUnstorableJsonText(text), want, text);
  // Whatever the JSON, text said to be clean parses to a storable value (fixed seed).
  const hostile = fc.oneof(fc.jsonValue(), fc.constantFrom('\u0000', '\ud800', '\udfff', 'x\u0000y'));
  const deep = fc.integer({ min: 1, max: MAX_JSON_DEPTH + 2 }).map((n) => JSON.parse(nested(n)) as unknown);
  fc.assert(
    fc.property(fc.oneof(fc.dictionary(fc.string({ unit: 'binary' }), hostile), fc.array(hostile), deep), (value) => {
      const text = JSON.stringify(value);
      if (!mayBeUnstorableJsonText(text)) assert.equal(unstorableJson(JSON.parse(text), 'body'), undefined);
    }),
    { seed: 20261206, numRuns: 2000 },
  );
});
