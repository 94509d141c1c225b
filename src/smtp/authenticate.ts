// SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489) and ARC (RFC 8617) of a mail the
// edge received, verified with mailauth through the configured DNS servers. The
// verdicts travel with the mail into the pipeline (and are stored with the message);
// the Authentication-Results header (RFC 8601) the edge writes goes on top, and any
// header a sender wrote under our authserv-id is removed first (RFC 8601 §5).
import { authenticate } from '../mail/mailauth.js';
import { headerFields, parseAuthenticationResults } from '../ingress/authentication-results.js';
import type { DkimOutcome, DomainAuth, Resolver } from '../ingress/domain-auth.js';

export interface SessionFacts {
  readonly ip: string;
  readonly helo: string;
  /** MAIL FROM; '' for the null sender. */
  readonly sender: string;
  /** Our host name: the authserv-id. */
  readonly hostname: string;
}

export interface Verdicts {
  readonly auth: DomainAuth;
  /** Received-SPF and Authentication-Results lines, CRLF-terminated, to prepend. */
  readonly headers: string;
}

interface DkimRow {
  status: { result: string };
  signingDomain?: string;
  selector?: string;
}

export async function verifyMail(raw: Buffer, s: SessionFacts, resolver: Resolver): Promise<Verdicts> {
  const res = await authenticate(raw, {
    ip: s.ip,
    helo: s.helo,
    sender: s.sender,
    mta: s.hostname,
    resolver: resolver as never,
    disableBimi: true,
    // The client is whoever connected to us; Received lines a sender wrote prove nothing.
    trustReceived: false,
  });
  const result = (r: { status?: { result?: string } } | false | undefined) => (r ? r.status?.result : undefined);
  const spf = result(res.spf);
  const dmarc = result(res.dmarc);
  const arc = result(res.arc);
  return {
    auth: {
      source: 'mailauth',
      dkim: ((res.dkim?.results ?? []) as DkimRow[]).map((r) => ({
        result: (r.status.result as DkimOutcome) ?? 'neutral',
        domain: (r.signingDomain ?? '').toLowerCase(),
        ...(r.selector ? { selector: r.selector } : {}),
      })),
      ...(spf ? { spf } : {}),
      ...(dmarc ? { dmarc } : {}),
      ...(arc ? { arc } : {}),
    },
    headers: res.headers,
  };
}

/** `raw` without the Authentication-Results header fields that carry `authservId` (a sender's forgeries). */
export function withoutOurAuthResults(raw: Buffer, authservId: string): Buffer {
  const id = authservId.toLowerCase();
  const forged = headerFields(raw).filter(
    (h) => h.name.toLowerCase() === 'authentication-results' && parseAuthenticationResults(h.value).authservId === id,
  );
  if (forged.length === 0) return raw;
  const text = raw.toString('latin1');
  const end = /\r\n\r\n/.exec(text)?.index ?? text.length;
  // Each field starts after a line break; one is put before the first so that all look alike.
  let head = `\r\n${text.slice(0, end)}`;
  for (const h of forged) head = head.replace(`\r\n${h.name}:${h.value.replace(/\n/g, '\r\n')}`, '');
  return Buffer.concat([Buffer.from(head.slice(2), 'latin1'), raw.subarray(end)]);
}
