// The signing half of admp-sig-v1 (docs/protocol.md), with no Node-only API: the
// server (src/core/signature.ts) and the TypeScript SDK (sdk/, which runs in Deno,
// Bun and browsers too) both build the signature base and sign with this module, so
// what a partner signs and what we verify are one piece of code.
import * as ed from '@noble/ed25519';
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js';
import { canonicalJson } from './canonical-json.js';

// @noble/ed25519's synchronous API needs a SHA-512 (its README); @noble/hashes provides it.
ed.hashes.sha512 = sha512;

export const SIGNATURE_VERSION = 'admp-sig-v1';

/** The X-Agent-* header values of a signed message: four always, `X-Agent-Expires` when the signer chose a validity. */
export type SignatureHeaders = Record<
  'X-Agent-ID' | 'X-Agent-KID' | 'X-Agent-Timestamp' | 'X-Agent-Signature',
  string
> & {
  readonly 'X-Agent-Expires'?: string;
};

/** Everything a signature covers, before canonicalisation. */
export interface SignedFields {
  /** Sender agent address, the X-Agent-ID value. */
  readonly agent: string;
  readonly kid: string;
  /** X-Agent-Timestamp: Unix time in seconds. */
  readonly timestamp: number;
  /**
   * X-Agent-Expires: Unix seconds after which the signer wants the mail refused, like RFC 9421
   * `expires` or DKIM `x=` (docs/protocol.md §6.3). Absent: the receiver's default validity.
   */
  readonly expires?: number;
  /** The Message-ID, with or without its angle brackets. */
  readonly messageId: string;
  /** Recipient agent address: the envelope recipient (RCPT TO). */
  readonly to: string;
  /** The address in the From header. */
  readonly from: string;
  /** The Subject header after RFC 2047 decoding; empty when there is none. */
  readonly subject: string;
  /** The ADMP envelope's `type`. */
  readonly type: string;
  /** The ADMP envelope's `correlation_id`, or null. */
  readonly correlationId: string | null;
  /** The exact bytes of the JSON envelope (after MIME transfer decoding). */
  readonly body: Uint8Array;
}

/** A SHA-256 implementation: the server passes Node's (faster on large bodies), others use @noble/hashes. */
export type Sha256 = (bytes: Uint8Array) => Uint8Array;

/** Standard base64 of bytes (btoa exists in Node 16+, Deno, Bun and browsers). */
export const base64 = (b: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
};

/** base64url without padding (RFC 4648 §5). */
export const base64url = (b: Uint8Array): string =>
  base64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** Runs of whitespace become one space, ends trimmed: survives MTA re-folding and RFC 2047 re-encoding. */
export const canonicalSubject = (s: string): string => s.replace(/[ \t\r\n]+/g, ' ').trim();

/** `<id@host>` → `id@host`. */
export const canonicalMessageId = (s: string): string =>
  s
    .trim()
    .replace(/^<(.*)>$/s, '$1')
    .trim();

/** The signature base: the UTF-8 bytes of this RFC 8785 string are what Ed25519 signs. */
export function signatureBase(f: SignedFields, sha256: Sha256 = nobleSha256): string {
  return canonicalJson({
    v: SIGNATURE_VERSION,
    agent: f.agent.trim().toLowerCase(),
    kid: f.kid,
    timestamp: f.timestamp,
    // Only when the signer chose a validity: a base without it is the 11 members of §4.1.
    ...(f.expires !== undefined ? { expires: f.expires } : {}),
    message_id: canonicalMessageId(f.messageId),
    to: f.to.trim().toLowerCase(),
    from: f.from.trim().toLowerCase(),
    subject: canonicalSubject(f.subject),
    type: f.type,
    correlation_id: f.correlationId,
    body_sha256: base64url(sha256(f.body)),
  });
}

/** Ed25519 signature (RFC 8032) of the base by a 32-byte seed, in standard base64: the X-Agent-Signature value. */
export const signBaseNoble = (seed: Uint8Array, base: string): string =>
  base64(ed.sign(new TextEncoder().encode(base), seed));

/** The X-Agent-* header values for a message and its signature value. */
export const headersOf = (f: SignedFields, signature: string): SignatureHeaders => ({
  'X-Agent-ID': f.agent.trim().toLowerCase(),
  'X-Agent-KID': f.kid,
  'X-Agent-Timestamp': String(f.timestamp),
  ...(f.expires !== undefined ? { 'X-Agent-Expires': String(f.expires) } : {}),
  'X-Agent-Signature': signature,
});

/** The X-Agent-* header values for a message, signed with @noble/ed25519. */
export const signatureHeadersNoble = (f: SignedFields, seed: Uint8Array): SignatureHeaders =>
  headersOf(f, signBaseNoble(seed, signatureBase(f)));
