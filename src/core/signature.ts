// Agent message signatures, version admp-sig-v1 (docs/protocol.md). Pure: the
// signature base is built from inputs, keys come from an injected resolver and the
// clock is an argument, so the same code serves the pipeline, `admp sign` and the
// test vectors.
//
// Design: MTAs re-fold headers and re-encode MIME, so we
// never sign transport bytes (DKIM needs `relaxed` canonicalisation for that).
// The base is an RFC 8785 (JCS) object of decoded values, bound to the envelope
// recipient (a DKIM signature can be replayed to another RCPT TO; ours cannot), to
// the Message-ID (the nonce the dedupe fingerprint includes) and to a timestamp.
import type { Envelope } from './envelope.js';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { tryParseAddress, tryParseRecipient } from './address.js';
import {
  signatureBase as signatureBaseWith,
  signBaseNoble,
  headersOf,
  canonicalMessageId,
  type SignatureHeaders,
  type SignedFields,
} from './signature-base.js';

// The signing half is shared with the SDK (no Node-only API there); this module adds
// Node's faster primitives and the verifier.
export {
  SIGNATURE_VERSION,
  canonicalSubject,
  canonicalMessageId,
  type SignedFields,
  type SignatureHeaders,
} from './signature-base.js';

/** The four signature headers, each required exactly once (lower-cased names). */
export const AGENT_HEADERS = ['x-agent-id', 'x-agent-kid', 'x-agent-timestamp', 'x-agent-signature'] as const;

/** The signer's chosen validity end (§6.3): optional, at most once. */
export const EXPIRES_HEADER = 'x-agent-expires';

/** A key id: the agent_key.kid rule of migrations/0001_core.sql. */
export const KID = /^[A-Za-z0-9._-]{1,128}$/;

export type Ed25519Impl = 'node' | 'noble';

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

const nodeSha256 = (body: Uint8Array): Uint8Array => createHash('sha256').update(body).digest();

/** SHA-256 of the envelope bytes, base64url without padding (RFC 4648 §5). */
export const bodyDigest = (body: Uint8Array): string => b64url(nodeSha256(body));

/** The signature base: the UTF-8 bytes of this RFC 8785 string are what Ed25519 signs. */
export const signatureBase = (f: SignedFields): string => signatureBaseWith(f, nodeSha256);

// RFC 8410 §7: an Ed25519 PKCS#8 private key is this DER prefix followed by the 32-byte seed.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new TypeError('an Ed25519 private key seed is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** The 32-byte seed of an Ed25519 private KeyObject (the JWK `d`, RFC 8037 §2). */
export function seedOfPrivateKey(key: KeyObject): Uint8Array {
  const d = key.asymmetricKeyType === 'ed25519' ? key.export({ format: 'jwk' }).d : undefined;
  if (!d) throw new TypeError('not an Ed25519 private key');
  return Buffer.from(d, 'base64url');
}

/** The raw 32-byte public key of a seed. */
export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  return Buffer.from(createPublicKey(privateKeyFromSeed(seed)).export({ format: 'jwk' }).x!, 'base64url');
}

/** Signs the base; returns the signature in standard base64 (the X-Agent-Signature value). */
export function signBase(seed: Uint8Array, base: string, impl: Ed25519Impl = 'node'): string {
  if (impl === 'noble') return signBaseNoble(seed, base);
  return nodeSign(null, Buffer.from(base, 'utf8'), privateKeyFromSeed(seed)).toString('base64');
}

/** The X-Agent-* header values for a message. */
export const signatureHeaders = (f: SignedFields, seed: Uint8Array, impl: Ed25519Impl = 'node'): SignatureHeaders =>
  headersOf(f, signBase(seed, signatureBase(f), impl));

// ---- verification ------------------------------------------------------------

export type KeySource = 'local' | 'pinned' | 'jwks' | 'dns';

export interface AgentPublicKey {
  readonly domain: string;
  readonly kid: string;
  /** The one agent address this key may sign for, or null for any agent of its domain. */
  readonly agent: string | null;
  /** Raw 32-byte Ed25519 public key (RFC 8032 §5.1.5). */
  readonly publicKey: Uint8Array;
  readonly source: KeySource;
}

export type KeyLookup =
  | { readonly status: 'found'; readonly key: AgentPublicKey }
  | { readonly status: 'not_found' }
  | { readonly status: 'unavailable'; readonly reason: string };

/** Finds the key (domain, kid); never by kid alone. */
export type KeyResolver = (domain: string, kid: string) => Promise<KeyLookup>;

export interface HeaderField {
  readonly name: string;
  /** Raw value; may still be folded. */
  readonly value: string;
}

export interface VerifyInput {
  /** Every header field of the message, in order (to count duplicates). */
  readonly headers: readonly HeaderField[];
  /** The SMTP envelope recipient (RCPT TO) this copy is delivered to. */
  readonly envelopeRecipient: string;
  /** The From address when the From header holds exactly one mailbox. */
  readonly from: string | undefined;
  /** The decoded Subject, if any. */
  readonly subject: string | undefined;
  readonly messageId: string | undefined;
  /** The exact JSON envelope bytes. */
  readonly body: Uint8Array;
  /** The parsed ADMP envelope (the pipeline validates it). */
  readonly envelope: Pick<Envelope, 'to' | 'type' | 'correlation_id'>;
}

export interface VerifyOptions {
  /** Current Unix time in seconds. */
  readonly now: number;
  /** Accepted clock difference (config clockSkewSec), both directions. */
  readonly clockSkewSec: number;
  /**
   * The validity of a signature without `X-Agent-Expires`: how long after its timestamp it
   * is still fresh when it reaches our MTA (config signatureValiditySec; 0: only the clock
   * skew). Mail is store-and-forward: MTAs retry a deferred mail for days (docs/protocol.md §6.3).
   */
  readonly validitySec?: number;
  /** The longest validity honoured, whatever `X-Agent-Expires` asks (config signatureMaxValiditySec). */
  readonly maxValiditySec?: number;
  /** When our own MTA first received the mail (Unix seconds), if it says so; else `now`. */
  readonly receivedAt?: number;
  readonly resolveKey: KeyResolver;
}

type Freshness = Pick<VerifyOptions, 'now' | 'clockSkewSec' | 'validitySec' | 'maxValiditySec' | 'receivedAt'>;

/**
 * The last Unix second at which our MTA may first receive a mail signed at `timestamp`
 * (with the signer's `expires`, if any) for it to be fresh: the validity's end plus the
 * clock skew. A copy received later is refused, so a replay cache keeps the signature
 * this long and no longer.
 */
export function validUntil(timestamp: number, expires: number | undefined, o: Freshness): number {
  const end =
    expires === undefined
      ? timestamp + (o.validitySec ?? 0)
      : Math.min(expires, timestamp + (o.maxValiditySec ?? Number.POSITIVE_INFINITY));
  return end + o.clockSkewSec;
}

/**
 * The freshness rule (docs/protocol.md §6.3): not signed in the future (beyond the
 * clock skew), and first received by our MTA before the signature's validity ended
 * (the signer's `expires`, capped, or the default validity after its timestamp).
 * Undefined when fresh, else why not.
 */
export function stalenessOf(timestamp: number, expires: number | undefined, o: Freshness): string | undefined {
  if (timestamp > o.now + o.clockSkewSec)
    return `timestamp ${timestamp} is more than ${o.clockSkewSec} s ahead of our clock`;
  const arrived = Math.min(o.receivedAt ?? o.now, o.now);
  const until = validUntil(timestamp, expires, o);
  if (arrived > until)
    return `the signature was valid until ${until - o.clockSkewSec} (${o.clockSkewSec} s skew allowed) and the mail reached us at ${arrived}`;
  return undefined;
}

export type SignatureFailure =
  'signature_missing' | 'signature_invalid' | 'signature_expired' | 'unknown_key' | 'key_unavailable';

export type VerifyResult =
  | {
      readonly ok: true;
      readonly agent: string;
      readonly kid: string;
      readonly keySource: KeySource;
      readonly timestamp: number;
      /** The signer's X-Agent-Expires, if any. */
      readonly expires: number | undefined;
      /** Unix seconds: until then a copy may still be fresh (validUntil); a replay cache keeps it that long. */
      readonly validUntil: number;
      readonly messageId: string;
    }
  | { readonly ok: false; readonly code: SignatureFailure; readonly reason: string };

const fail = (code: SignatureFailure, reason: string): VerifyResult => ({ ok: false, code, reason });

/** RFC 5322 §2.2.3 unfolding, then outer whitespace removed. */
const unfold = (v: string): string => v.replace(/\r?\n(?=[ \t])/g, '').trim();

const countHeaders = (headers: readonly HeaderField[]): Map<string, string[]> => {
  const m = new Map<string, string[]>();
  for (const h of headers) {
    const k = h.name.toLowerCase();
    m.set(k, [...(m.get(k) ?? []), h.value]);
  }
  return m;
};

// 64 signature bytes in standard base64 are exactly 86 characters and "==".
const SIGNATURE_B64 = /^[A-Za-z0-9+/]{86}==$/;

// Building a KeyObject from raw bytes costs about 80 µs per verify, so
// they are cached per (domain, kid, key bytes): a re-published kid with new bytes
// gets its own entry. Insertion order gives a cheap LRU bound.
const keyObjects = new Map<string, KeyObject>();
const KEY_CACHE_MAX = 1024;

function publicKeyObject(k: AgentPublicKey): KeyObject {
  const x = b64url(k.publicKey);
  const id = `${k.domain}\u0000${k.kid}\u0000${x}`;
  let obj = keyObjects.get(id);
  if (!obj) {
    obj = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    if (keyObjects.size >= KEY_CACHE_MAX) keyObjects.delete(keyObjects.keys().next().value!);
    keyObjects.set(id, obj);
  }
  return obj;
}

/**
 * Verifies the agent signature of one delivery (docs/protocol.md §Verification).
 * Never throws: failures are values, mapped once to AdmpError by the pipeline.
 */
export async function verifySignature(input: VerifyInput, opts: VerifyOptions): Promise<VerifyResult> {
  const headers = countHeaders(input.headers);
  const missing = AGENT_HEADERS.filter((h) => !headers.has(h));
  if (missing.length > 0) return fail('signature_missing', `missing ${missing.join(', ')}`);
  // One of each: a prepended duplicate could otherwise be displayed or used instead
  // of the signed one (as in tokencanopy/e2a#751).
  for (const [name, max, min] of [
    ...AGENT_HEADERS.map((h) => [h, 1, 1] as const),
    [EXPIRES_HEADER, 1, 0] as const,
    ['from', 1, 1] as const,
    ['message-id', 1, 1] as const,
    ['subject', 1, 0] as const,
  ]) {
    const n = headers.get(name)?.length ?? 0;
    if (n > max || n < min)
      return fail(
        'signature_invalid',
        `${name} must appear ${min === max ? 'exactly once' : 'at most once'}, found ${n}`,
      );
  }
  const value = (h: string): string => unfold(headers.get(h)![0]!);

  const agent = tryParseAddress(value('x-agent-id'));
  if (!agent) return fail('signature_invalid', 'X-Agent-ID is not an agent address');
  const from = input.from === undefined ? undefined : tryParseAddress(input.from);
  if (from?.address !== agent.address)
    return fail('signature_invalid', 'From must be the single address in X-Agent-ID');
  const kid = value('x-agent-kid');
  if (!KID.test(kid)) return fail('signature_invalid', 'X-Agent-KID is malformed');
  const ts = value('x-agent-timestamp');
  if (!/^[0-9]{1,12}$/.test(ts)) return fail('signature_invalid', 'X-Agent-Timestamp must be integer Unix seconds');
  const exp = headers.has(EXPIRES_HEADER) ? value(EXPIRES_HEADER) : undefined;
  if (exp !== undefined && !/^[0-9]{1,12}$/.test(exp))
    return fail('signature_invalid', 'X-Agent-Expires must be integer Unix seconds');
  const expires = exp === undefined ? undefined : Number(exp);
  if (expires !== undefined && expires < Number(ts))
    return fail('signature_invalid', 'X-Agent-Expires is before X-Agent-Timestamp');
  const signature = value('x-agent-signature').replace(/\s+/g, '');
  if (!SIGNATURE_B64.test(signature)) return fail('signature_invalid', 'X-Agent-Signature must be 64 bytes in base64');
  if (!input.messageId || canonicalMessageId(input.messageId) === '')
    return fail('signature_invalid', 'Message-ID is missing');

  // Plus-addresses (RFC 5233): the signature names the agent; a detail it names must be the envelope's too.
  const rcpt = tryParseRecipient(input.envelopeRecipient);
  const to = tryParseRecipient(input.envelope.to);
  if (!rcpt || to?.agent.address !== rcpt.agent.address || (to.detail !== undefined && to.detail !== rcpt.detail))
    return fail('signature_invalid', 'the envelope recipient is not the signed recipient');

  const timestamp = Number(ts);
  const stale = stalenessOf(timestamp, expires, opts);
  if (stale) return fail('signature_expired', stale);

  let found: KeyLookup;
  try {
    found = await opts.resolveKey(agent.domain, kid);
  } catch (err) {
    found = { status: 'unavailable', reason: (err as Error).message };
  }
  if (found.status === 'unavailable') return fail('key_unavailable', `key ${kid} of ${agent.domain}: ${found.reason}`);
  if (found.status === 'not_found') return fail('unknown_key', `no key ${kid} for ${agent.domain}`);
  const key = found.key;
  if (key.domain !== agent.domain || key.kid !== kid)
    return fail('unknown_key', `key ${kid} does not belong to ${agent.domain}`);
  if (key.agent !== null && key.agent !== agent.address)
    return fail('unknown_key', `key ${kid} belongs to another agent`);

  const base = signatureBase({
    agent: agent.address,
    kid,
    timestamp,
    expires,
    messageId: input.messageId,
    to: rcpt.agent.address,
    from: from.address,
    subject: input.subject ?? '',
    type: input.envelope.type,
    correlationId: input.envelope.correlation_id ?? null,
    body: input.body,
  });
  const good = nodeVerify(null, Buffer.from(base, 'utf8'), publicKeyObject(key), Buffer.from(signature, 'base64'));
  if (!good) return fail('signature_invalid', 'signature does not verify');
  return {
    ok: true,
    agent: agent.address,
    kid,
    keySource: key.source,
    timestamp,
    expires,
    validUntil: validUntil(timestamp, expires, opts),
    messageId: canonicalMessageId(input.messageId),
  };
}
