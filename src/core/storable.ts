// What a client may hand us as JSON or text, so that it can be stored and served again.
// PostgreSQL refuses U+0000 in text and in jsonb (SQLSTATE 22P05/22021), and a lone
// UTF-16 surrogate is not Unicode text: jsonb refuses its \uD800 escape, and UTF-8
// encoding would silently replace it. JSON nested without bound overflows the recursive
// code that reads it again (jsonb's parser, JSON.stringify, canonical JSON), so depth is
// capped. Checked where input enters (the HTTP JSON parser, the mail envelope, the
// mailbox service), each refusal naming the problem and where it is.

/** Deepest nesting of arrays and objects accepted in client JSON (docs/api.md). */
export const MAX_JSON_DEPTH = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why this text cannot be stored, or undefined when it can. */
export function unstorableText(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains U+0000 (NUL), which cannot be stored';
  const lone = LONE_SURROGATE.exec(s);
  if (lone)
    return `contains a lone surrogate U+${lone[0].charCodeAt(0).toString(16).toUpperCase()}, which is not Unicode text`;
  return undefined;
}

interface Node {
  readonly value: unknown;
  readonly depth: number;
  readonly parent?: Node;
  readonly key?: string | number;
}

const pathOf = (root: string, n: Node | undefined): string => {
  const parts: string[] = [];
  for (let p = n; p?.parent; p = p.parent)
    parts.push(
      typeof p.key === 'number'
        ? `[${p.key}]`
        : /^[A-Za-z_][A-Za-z0-9_]*$/.test(p.key!)
          ? `.${p.key}`
          : `[${JSON.stringify(p.key)}]`,
    );
  return root + parts.reverse().join('');
};

/**
 * Why this parsed JSON value cannot be stored, naming where (`root` is the name of the
 * whole value, e.g. "body"), or undefined when it can. Iterative: a value nested far too
 * deep is refused, never a stack overflow.
 */
export function unstorableJson(value: unknown, root = '$', maxDepth = MAX_JSON_DEPTH): string | undefined {
  const stack: Node[] = [{ value, depth: 0 }];
  for (let n = stack.pop(); n; n = stack.pop()) {
    const v = n.value;
    if (typeof v === 'string') {
      const why = unstorableText(v);
      if (why) return `${pathOf(root, n)} ${why}`;
    } else if (v !== null && typeof v === 'object') {
      if (n.depth >= maxDepth) return `${pathOf(root, n)} is nested deeper than ${maxDepth} levels`;
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth: n.depth + 1, parent: n, key: i });
      } else {
        for (const [k, x] of Object.entries(v)) {
          const why = unstorableText(k);
          if (why) return `${pathOf(root, n)} has a key that ${why}`;
          stack.push({ value: x, depth: n.depth + 1, parent: n, key: k });
        }
      }
    }
  }
  return undefined;
}
