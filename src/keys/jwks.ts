// Agent keys as a JWK Set (RFC 7517 §5) at https://<domain>/.well-known/agent-keys.json:
// our own document (served by the HTTP layer) and the fetch of a partner's.
// Ed25519 keys are OKP JWKs (RFC 8037 §2): `x` is the raw public key, base64url.
import { request, type Dispatcher } from 'undici';
import { base64url, type JWK } from 'jose';
import { KID, type AgentPublicKey } from '../core/signature.js';
import { tryParseAddress } from '../core/address.js';
import type { AgentKeyRow } from '../db/keys.js';
import type { KeySet } from './key-set-cache.js';

export const JWKS_PATH = '/.well-known/agent-keys.json';

/** A published agent key. `agent` (ours, not registered) limits the key to one agent. */
export interface AgentJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly kid: string;
  readonly x: string;
  readonly use: 'sig';
  readonly alg: 'EdDSA';
  readonly agent: string;
}

/** Our JWKS document from agent_key rows valid now; partner (pinned) rows are never published. */
export function ourJwks(rows: readonly AgentKeyRow[]): { keys: AgentJwk[] } {
  return {
    keys: rows
      .filter((r) => r.source === 'local')
      .map((r) => ({
        kty: 'OKP',
        crv: 'Ed25519',
        kid: r.kid,
        x: base64url.encode(r.publicKey),
        use: 'sig',
        alg: 'EdDSA',
        agent: r.agent,
      })),
  };
}

const X_B64URL = /^[A-Za-z0-9_-]{43}$/; // 32 bytes, unpadded

/**
 * The usable keys of a partner's document. Entries that are not Ed25519 signing keys,
 * or that name an agent of another domain, are skipped (a JWKS may hold other keys).
 */
export function parseJwks(doc: unknown, domain: string): AgentPublicKey[] {
  const keys = (doc as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) throw new TypeError('a JWKS has a "keys" array');
  return keys.flatMap((k: JWK & { agent?: unknown }): AgentPublicKey[] => {
    if (k?.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || !X_B64URL.test(k.x)) return [];
    if (typeof k.kid !== 'string' || !KID.test(k.kid)) return [];
    if ((k.use !== undefined && k.use !== 'sig') || (k.alg !== undefined && k.alg !== 'EdDSA' && k.alg !== 'Ed25519'))
      return [];
    if ('d' in k) return []; // a private key published by mistake is not trusted
    let agent: string | null = null;
    if (k.agent !== undefined) {
      const a = typeof k.agent === 'string' ? tryParseAddress(k.agent) : undefined;
      if (a?.domain !== domain) return [];
      agent = a.address;
    }
    return [{ domain, kid: k.kid, agent, publicKey: base64url.decode(k.x), source: 'jwks' }];
  });
}

export interface JwksFetchOptions {
  readonly scheme: 'https' | 'http';
  /** 0: the scheme's default port. */
  readonly port: number;
  readonly timeoutMs: number;
  /** undici dispatcher; tests pass an Agent whose `connect.lookup` maps test domains to 127.0.0.1. */
  readonly dispatcher?: Dispatcher;
}

export const jwksUrl = (domain: string, o: Pick<JwksFetchOptions, 'scheme' | 'port'>): string =>
  `${o.scheme}://${domain}${o.port ? `:${o.port}` : ''}${JWKS_PATH}`;

// A key set is small; a larger answer is a misconfiguration or an attack on our memory.
const MAX_JWKS_BYTES = 64 * 1024;

/**
 * Fetches a partner's JWKS. 404/410 and redirects (not followed: the document must be
 * served by the domain itself) mean the domain publishes none; a network error, a
 * timeout, 5xx, 429 or a malformed document mean "try again later".
 */
export async function fetchJwks(domain: string, o: JwksFetchOptions): Promise<KeySet> {
  const url = jwksUrl(domain, o);
  try {
    const res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/jwk-set+json, application/json' },
      dispatcher: o.dispatcher,
      signal: AbortSignal.timeout(o.timeoutMs),
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_JWKS_BYTES) {
        res.body.destroy();
        return { status: 'unavailable', reason: `${url}: larger than ${MAX_JWKS_BYTES} bytes` };
      }
      chunks.push(chunk as Buffer);
    }
    if (res.statusCode === 200)
      return { status: 'ok', keys: parseJwks(JSON.parse(Buffer.concat(chunks).toString('utf8')), domain) };
    if (res.statusCode === 429 || res.statusCode >= 500)
      return { status: 'unavailable', reason: `${url}: HTTP ${res.statusCode}` };
    return { status: 'absent' };
  } catch (err) {
    return { status: 'unavailable', reason: `${url}: ${(err as Error).message}` };
  }
}
