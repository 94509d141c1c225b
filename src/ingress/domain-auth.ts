// Domain authentication of an agent mail: DKIM `pass` for a domain aligned with
// the sender agent's domain (relaxed alignment in the sense of RFC 7489 §3.1.1:
// the signing domain is the sender's domain or a parent of it), or a SASL login of
// our MTA that policy lets act as that agent. Verdicts come from a trusted source
// only: Rspamd's own results (HTTP road), our MTA's Authentication-Results
// (LMTP road), or a DKIM check of our own through the configured resolver.
import { dkimVerify } from '../mail/mailauth.js';

export type DkimOutcome = 'pass' | 'fail' | 'neutral' | 'temperror' | 'permerror' | 'none' | 'policy';

export interface DkimVerdict {
  readonly result: DkimOutcome;
  readonly domain: string;
  readonly selector?: string;
}

export interface DomainAuth {
  readonly source: 'rspamd' | 'authentication-results' | 'mailauth' | 'none';
  readonly dkim: readonly DkimVerdict[];
  readonly spf?: string;
  readonly dmarc?: string;
  readonly arc?: string;
}

export const isAligned = (signingDomain: string, senderDomain: string): boolean => {
  const d = signingDomain.toLowerCase().replace(/\.$/, '');
  const s = senderDomain.toLowerCase();
  // A parent needs at least two labels: `d=com` aligns nothing.
  return d === s || (d.includes('.') && s.endsWith(`.${d}`));
};

/** The aligned passing DKIM domain, if any. */
export const alignedDkimPass = (auth: DomainAuth, senderDomain: string): string | undefined =>
  auth.dkim.find((v) => v.result === 'pass' && isAligned(v.domain, senderDomain))?.domain;

/** Rspamd's DKIM check results to RFC 8601 result names. */
const RSPAMD_DKIM: Record<string, DkimOutcome> = {
  allow: 'pass',
  reject: 'fail',
  tempfail: 'temperror',
  permfail: 'permerror',
  'not found': 'none',
  'bad record': 'permerror',
};

interface RspamdAuthJson {
  dkim?: { result?: string; domain?: string; selector?: string }[];
  spf?: { symbol?: string };
  dmarc?: { symbol?: string };
  arc?: { symbol?: string };
}

/** Reads the plugin's X-Rspamd-Auth header (rspamd/agents_bridge.lua `auth_json`). */
export function fromRspamd(header: string | undefined): DomainAuth {
  let j: RspamdAuthJson = {};
  try {
    j = header ? (JSON.parse(header) as RspamdAuthJson) : {};
  } catch {
    j = {};
  }
  return {
    source: 'rspamd',
    dkim: (Array.isArray(j.dkim) ? j.dkim : [])
      .filter((d) => typeof d?.domain === 'string')
      .map((d) => ({
        result: RSPAMD_DKIM[d.result ?? ''] ?? 'neutral',
        domain: d.domain!.toLowerCase(),
        ...(d.selector ? { selector: d.selector } : {}),
      })),
    ...(j.spf?.symbol ? { spf: j.spf.symbol } : {}),
    ...(j.dmarc?.symbol ? { dmarc: j.dmarc.symbol } : {}),
    ...(j.arc?.symbol ? { arc: j.arc.symbol } : {}),
  };
}

export type Resolver = (name: string, rrtype: string) => Promise<string[] | string[][]>;

/** Answers that say a name or record does not exist (NXDOMAIN, NODATA), as Node's resolver codes them. */
const NEGATIVE = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * DNS answers (DKIM keys, SPF, DMARC) kept for `ttlMs`, and one lookup in flight per name:
 * without it every mail pays a DNS round trip per record, and a burst from one partner
 * asks the same question many times at once (bench/README.md, ingest). A negative answer
 * (no such name, no such record: a sender without DMARC record asks for two on every
 * mail) is kept as long, as a resolver keeps it (RFC 2308). Other failures (timeout,
 * SERVFAIL) are asked again next time, so a temperror stays temporary. A key the partner
 * publishes, replaces or revokes (RFC 6376 §3.6.1, empty p=) is seen within `ttlMs`, well
 * inside the usual TTL of such records.
 */
export function cachedResolver(resolve: Resolver, ttlMs = 60_000, max = 1024, now: () => number = Date.now): Resolver {
  const cache = new Map<string, { answer: Promise<string[] | string[][]>; at: number }>();
  return (name, rrtype) => {
    const id = `${rrtype} ${name.toLowerCase()}`;
    const hit = cache.get(id);
    if (hit && now() - hit.at < ttlMs) return hit.answer;
    const answer = resolve(name, rrtype);
    if (cache.size >= max) cache.delete(cache.keys().next().value!);
    cache.set(id, { answer, at: now() });
    answer.catch((err: { code?: string }) => {
      if (!NEGATIVE.has(err?.code ?? '') && cache.get(id)?.answer === answer) cache.delete(id);
    });
    return answer;
  };
}

/** True when some LF is not preceded by CR. */
function hasBareLf(raw: Buffer): boolean {
  for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) if (i === 0 || raw[i - 1] !== 13) return true;
  return false;
}

/**
 * Verifies DKIM ourselves with mailauth. The milter road re-serialises folded
 * header lines with bare LF, so line ends are made CRLF
 * first; a message that is CRLF throughout (LMTP, most of the milter road) is not copied.
 */
export async function verifyDkim(raw: Buffer, resolver: Resolver): Promise<DomainAuth> {
  const crlf = hasBareLf(raw) ? Buffer.from(raw.toString('binary').replace(/\r?\n/g, '\r\n'), 'binary') : raw;
  const res = await dkimVerify(crlf, { resolver });
  return {
    source: 'mailauth',
    dkim: res.results.map((r: { status: { result: string }; signingDomain?: string; selector?: string }) => ({
      result: (r.status.result as DkimOutcome) ?? 'neutral',
      domain: (r.signingDomain ?? '').toLowerCase(),
      ...(r.selector ? { selector: r.selector } : {}),
    })),
  };
}
