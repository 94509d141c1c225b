// What the relay's answer to a submission means for the message (RFC 5321 §4.2.1):
// 2yz accepted → sent; 5yz → failed with the relay's text as the diagnostic; 4yz,
// and anything that is no answer at all (connection refused, timeout, TLS or login
// trouble of ours), → try again later. Pure: it reads the nodemailer result or error.

export type RelayOutcome =
  | { readonly kind: 'accepted'; readonly response: string }
  | { readonly kind: 'temporary' | 'permanent'; readonly code: number | null; readonly diagnostic: string };

interface NodemailerError {
  code?: unknown;
  responseCode?: unknown;
  response?: unknown;
  message?: unknown;
}

export function relayAccepted(info: { response?: unknown }): RelayOutcome {
  return { kind: 'accepted', response: typeof info.response === 'string' ? info.response : '250' };
}

export function relayRefused(err: unknown): RelayOutcome {
  const e = (err ?? {}) as NodemailerError;
  const code = typeof e.responseCode === 'number' ? e.responseCode : null;
  const diagnostic = (
    typeof e.response === 'string' && e.response !== ''
      ? e.response
      : typeof e.message === 'string'
        ? e.message
        : String(err)
  )
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 1000);
  // A refused login (535) is our configuration, not the recipient's: it must not fail messages.
  const permanent = code !== null && code >= 500 && e.code !== 'EAUTH';
  return { kind: permanent ? 'permanent' : 'temporary', code, diagnostic };
}
