// RFC 8785 JSON Canonicalization Scheme (JCS). ECMAScript's JSON.stringify already
// serialises strings and numbers exactly as JCS §3.2.2 requires (JCS defines them by
// the ECMAScript algorithm), so what remains is sorting object members by their
// UTF-16 code units (§3.2.3), which is what Array.prototype.sort does for strings.

/** The RFC 8785 canonical form of a JSON value. Throws on values JSON cannot carry. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('JCS: NaN and Infinity are not JSON numbers');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const members = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${members.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new TypeError(`JCS: a ${typeof value} is not a JSON value`);
}
