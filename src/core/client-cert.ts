// Client-certificate bindings of agents (mutual TLS on the agent API): what a binding
// is, how it is written down, and whether a presented certificate matches it.
import { createHash, type X509Certificate } from 'node:crypto';
import { AdmpError } from '../errors.js';

export type CertBindingKind = 'subject' | 'spki';
export interface CertBinding {
  readonly kind: CertBindingKind;
  readonly value: string;
}

/** base64 SHA-256 of the DER SubjectPublicKeyInfo: the pin-sha256 of RFC 7469 §2.4 (`openssl … | openssl dgst -sha256 -binary | base64`). */
export function spkiPin(cert: X509Certificate): string {
  return createHash('sha256')
    .update(cert.publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
}

const ATTRIBUTE = /^([A-Za-z][A-Za-z0-9.-]*)\s*=\s*(.+)$/;

/**
 * A subject written `CN=alice, O=Example` (OpenSSL's one-line and RFC 4514 forms, `/`
 * separated as `openssl x509 -subject` printed it once, or Node's one attribute a line)
 * in canonical form: attribute types upper-cased, values trimmed, attributes sorted, so
 * the order a tool prints them in does not matter. Values holding `,` or `/` cannot be
 * written this way: bind such a certificate by its SPKI pin.
 */
export function canonicalSubject(subject: string): string {
  const parts = subject
    .split(/[\n,/]/)
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new AdmpError('bad_request', 'empty certificate subject');
  const attrs = parts.map((p) => {
    const m = ATTRIBUTE.exec(p);
    if (!m) throw new AdmpError('bad_request', `certificate subject part "${p}" is not TYPE=value`);
    return `${m[1]!.toUpperCase()}=${m[2]!.trim()}`;
  });
  return attrs.sort().join(', ');
}

const PIN = /^[A-Za-z0-9+/]{43}=$/;

/** Checks and normalises a binding given by an operator. */
export function parseBinding(kind: CertBindingKind, value: string): CertBinding {
  if (kind === 'spki') {
    if (!PIN.test(value.trim()))
      throw new AdmpError('bad_request', 'SPKI pin: base64 of a SHA-256 digest (44 characters ending in "=")');
    return { kind, value: value.trim() };
  }
  return { kind, value: canonicalSubject(value) };
}

/** True when the certificate matches one of the bindings. */
export function matchesBinding(cert: X509Certificate, bindings: readonly CertBinding[]): boolean {
  let subject: string | undefined;
  let pin: string | undefined;
  return bindings.some((b) => {
    if (b.kind === 'spki') return b.value === (pin ??= spkiPin(cert));
    subject ??= tryCanonical(cert.subject);
    return b.value === subject;
  });
}

function tryCanonical(subject: string): string {
  try {
    return canonicalSubject(subject);
  } catch {
    return '';
  }
}
