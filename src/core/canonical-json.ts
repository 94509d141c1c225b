// RFC 8785 JSON Canonicalization Scheme (JCS). ECMAScript's JSON.stringify already
// serialises strings and numbers exactly as JCS §3.2.2 requires (JCS defines them by
// the ECMAScript algorithm), so what remains is sorting object members by their
// UTF-16 code units (§3.2.3), which is what Array.prototype.sort does for strings.
// Built by appending to one string: it runs on every send (the fingerprint).

/** The RFC 8785 canonical form of a JSON value. Throws on values JSON cannot carry. */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('JCS: NaN and Infinity are not JSON numbers');
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + canonicalJson(value[i]);
        return `${out}]`;
      }
      const o = value as Record<string, unknown>;
      let out = '{';
      for (const k of Object.keys(o).sort()) {
        if (o[k] === undefined) continue;
        out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${canonicalJson(o[k])}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`JCS: a ${typeof value} is not a JSON value`);
  }
}
