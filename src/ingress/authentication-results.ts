// Authentication-Results (RFC 8601) as our own MTA wrote them. On the LMTP road we
// trust only the topmost header whose authserv-id is our MTA's host name: anything
// else in the message may come from the sender (RFC 8601 §5: headers with a foreign
// authserv-id must be ignored, and may be forged).
import type { DkimOutcome, DkimVerdict, DomainAuth } from './domain-auth.js';

export interface HeaderLine {
  readonly name: string;
  readonly value: string;
}

/** Removes RFC 5322 comments (nested parentheses) and unfolds. */
function stripComments(v: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (const c of v.replace(/\r?\n[ \t]+/g, ' ')) {
    if (c === '"' && depth === 0) quoted = !quoted;
    if (!quoted && c === '(') {
      depth++;
      continue;
    }
    if (!quoted && c === ')' && depth > 0) {
      depth--;
      continue;
    }
    if (depth === 0) out += c;
  }
  return out;
}

export function parseAuthenticationResults(value: string): {
  authservId: string;
  results: { method: string; result: string; props: Record<string, string> }[];
} {
  const [head, ...resinfos] = stripComments(value)
    .split(';')
    .map((s) => s.trim());
  const authservId = (head ?? '').split(/\s+/)[0]!.toLowerCase();
  const results = resinfos.filter(Boolean).map((r) => {
    const [first, ...rest] = r.split(/\s+/);
    const [method, result] = (first ?? '').split('=');
    const props: Record<string, string> = {};
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq > 0) props[p.slice(0, eq).toLowerCase()] = p.slice(eq + 1).replace(/^"|"$/g, '');
    }
    return { method: (method ?? '').toLowerCase(), result: (result ?? '').toLowerCase(), props };
  });
  return { authservId, results };
}

/** The DomainAuth of the topmost Authentication-Results by `authservId`, or none. */
export function trustedAuthResults(headers: readonly HeaderLine[], authservId: string): DomainAuth {
  const ours = headers
    .filter((h) => h.name.toLowerCase() === 'authentication-results')
    .map((h) => parseAuthenticationResults(h.value))
    .find((ar) => authservId !== '' && ar.authservId === authservId.toLowerCase());
  if (!ours) return { source: 'none', dkim: [] };
  const dkim: DkimVerdict[] = ours.results
    .filter((r) => r.method === 'dkim')
    .map((r) => ({
      result: r.result as DkimOutcome,
      // header.d (RFC 8601 §2.7.1); older writers give only header.i=@domain.
      domain: (r.props['header.d'] ?? r.props['header.i']?.replace(/^.*@/, '') ?? '').toLowerCase(),
      ...(r.props['header.s'] ? { selector: r.props['header.s'] } : {}),
    }));
  const first = (m: string) => ours.results.find((r) => r.method === m)?.result;
  return {
    source: 'authentication-results',
    dkim,
    ...(first('spf') ? { spf: first('spf') } : {}),
    ...(first('dmarc') ? { dmarc: first('dmarc') } : {}),
    ...(first('arc') ? { arc: first('arc') } : {}),
  };
}

/** The header fields of a raw message (up to the first empty line), unfolded lazily by the parser above. */
export function headerFields(raw: Buffer): HeaderLine[] {
  const text = raw.subarray(0, Math.min(raw.length, 256 * 1024)).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end >= 0 ? text.slice(0, end) : text;
  const out: HeaderLine[] = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && out.length > 0) {
      const last = out[out.length - 1]!;
      out[out.length - 1] = { name: last.name, value: `${last.value}\n${line}` };
    } else {
      const colon = line.indexOf(':');
      if (colon > 0) out.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1) });
    }
  }
  return out;
}
