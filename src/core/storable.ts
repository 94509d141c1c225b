// What a client may hand us as JSON or text, so that it can be stored and served again.
// PostgreSQL refuses U+0000 in text and in jsonb (SQLSTATE 22P05/22021), and a lone
// UTF-16 surrogate is not Unicode text: jsonb refuses its \uD800 escape, and UTF-8
// encoding would silently replace it. JSON nested without bound overflows the recursive
// code that reads it again (jsonb's parser, JSON.stringify, canonical JSON), so depth is
// capped. Checked where input enters (the HTTP JSON parser, the mail envelope, the
// mailbox service), each refusal naming the problem and where it is.

/** Deepest nesting of arrays and objects accepted in client JSON (docs/api.md). */
export const MAX_JSON_DEPTH = 64;

const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why this text cannot be stored, or undefined when it can. */
export function unstorableText(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains U+0000 (NUL), which cannot be stored';
  // Most text has no surrogate at all: one plain scan, the pairing regex only when it does.
  const lone = SURROGATE.test(s) ? LONE_SURROGATE.exec(s) : null;
  if (lone)
    return `contains a lone surrogate U+${lone[0].charCodeAt(0).toString(16).toUpperCase()}, which is not Unicode text`;
  return undefined;
}

/** `$.a[2]["x y"]`: the path of a value inside `root`. */
const pathOf = (root: string, path: readonly (string | number)[]): string =>
  root +
  path
    .map((k) =>
      typeof k === 'number' ? `[${k}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`,
    )
    .join('');

/**
 * Why this parsed JSON value cannot be stored, naming where (`root` is the name of the
 * whole value, e.g. "body"), or undefined when it can. The walk goes no deeper than
 * `maxDepth`, so a value nested far too deep is refused, never a stack overflow; it
 * allocates nothing per value (it runs on every send).
 */
export function unstorableJson(value: unknown, root = '$', maxDepth = MAX_JSON_DEPTH): string | undefined {
  return firstProblem(value, 0, maxDepth, root, []);
}

const OPENERS = ['{', '['];

/**
 * Whether JSON text decoded from UTF-8 may hold a value `unstorableJson` refuses, read off
 * the text without walking the parsed value; false means it cannot. In valid JSON a NUL or
 * a lone surrogate can only be written as a \u escape (RFC 8259 §7 forbids raw control
 * characters in strings, and the UTF-8 decoder turns an encoded surrogate into U+FFFD), and
 * each level of nesting needs its own `[` or `{`. Most bodies have neither, and their walk
 * is skipped (about 3 µs of an HTTP send).
 */
export function mayBeUnstorableJsonText(text: string, maxDepth = MAX_JSON_DEPTH): boolean {
  if (text.includes('\\u')) return true;
  let opens = 0;
  for (const open of OPENERS)
    for (let i = text.indexOf(open); i >= 0; i = text.indexOf(open, i + 1)) if (++opens >= maxDepth) return true;
  return false;
}

// A module-level recursion, not a closure made per call: this runs on every send.
function firstProblem(
  v: unknown,
  depth: number,
  maxDepth: number,
  root: string,
  path: (string | number)[],
): string | undefined {
  if (typeof v === 'string') {
    const why = unstorableText(v);
    return why && `${pathOf(root, path)} ${why}`;
  }
  if (v === null || typeof v !== 'object') return undefined;
  if (depth >= maxDepth) return `${pathOf(root, path)} is nested deeper than ${maxDepth} levels`;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      const why = firstProblem(v[i], depth + 1, maxDepth, root, path);
      path.pop();
      if (why) return why;
    }
    return undefined;
  }
  for (const k of Object.keys(v)) {
    const bad = unstorableText(k);
    if (bad) return `${pathOf(root, path)} has a key that ${bad}`;
    path.push(k);
    const why = firstProblem((v as Record<string, unknown>)[k], depth + 1, maxDepth, root, path);
    path.pop();
    if (why) return why;
  }
  return undefined;
}
