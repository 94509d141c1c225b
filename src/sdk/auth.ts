// The three ways an agent authenticates (docs/api.md §Authentication), as a function
// that gives the headers of one request. WebCrypto and jose only: runs in Node 20+,
// Deno, Bun and browsers.
import { importJWK, importPKCS8, SignJWT, type CryptoKey } from 'jose';
import * as ed from '@noble/ed25519';
import { base64url } from '../core/signature-base.js';
import { hmacSigningString } from '../core/request-signing.js';

export type Credentials =
  /** An agent token (`admp_…`) from `admp agent add` or `admp token rotate`. */
  | { readonly token: string }
  /** EdDSA JWTs minted from the agent's Ed25519 key (RFC 8037), refreshed before they expire. */
  | {
      readonly agent: string;
      readonly kid: string;
      /** PKCS#8 PEM (as `admp key create` writes it) or the raw 32-byte seed. */
      readonly privateKey: string | Uint8Array;
      /** `aud`: one of the server's agent domains; default the agent's own domain. */
      readonly audience?: string;
      /** Token lifetime in seconds (the server accepts at most 3600); default 300. */
      readonly lifetimeSec?: number;
    }
  /** HMAC-SHA256 request signatures with the secret `admp agent add` printed (base64url). */
  | { readonly agentId: string; readonly hmacSecret: string };

/** Headers that authenticate one request; `body` is the exact bytes sent. */
export type Authorizer = (
  method: string,
  pathWithQuery: string,
  body: Uint8Array<ArrayBuffer>,
) => Promise<Record<string, string>>;

const fromBase64url = (s: string): Uint8Array<ArrayBuffer> =>
  Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const hex = (b: ArrayBuffer): string => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

// RFC 8410 §7: a PKCS#8 Ed25519 private key is this DER prefix and the 32-byte seed.
const PKCS8_ED25519_PREFIX = '302e020100300506032b657004220420';

/** The 32-byte seed of a PKCS#8 Ed25519 PEM, or of a seed given as bytes. */
export function ed25519Seed(key: string | Uint8Array): Uint8Array {
  if (typeof key !== 'string') {
    if (key.length !== 32) throw new TypeError('an Ed25519 seed is 32 bytes');
    return key;
  }
  const der = fromBase64url(
    key
      .replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '')
      .replace(/\s+/g, '')
      .replace(/=+$/, ''),
  );
  const prefix = hex(der.slice(0, 16).buffer);
  if (der.length !== 48 || prefix !== PKCS8_ED25519_PREFIX) throw new TypeError('not a PKCS#8 Ed25519 private key');
  return der.slice(16);
}

// Renew when less than this share of the lifetime is left, so a token never expires in flight.
const RENEW_AT = 0.2;

export function authorizer(c: Credentials): Authorizer {
  if ('token' in c) {
    const h = { authorization: `Bearer ${c.token}` };
    return async () => h;
  }
  if ('hmacSecret' in c) {
    const key = crypto.subtle.importKey('raw', fromBase64url(c.hmacSecret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
    ]);
    return async (method, path, body) => {
      const ts = String(Math.floor(Date.now() / 1000));
      // New for every request (and every retry): the server accepts each nonce once.
      const nonce = crypto.randomUUID();
      const digest = hex(await crypto.subtle.digest('SHA-256', body));
      const mac = await crypto.subtle.sign(
        'HMAC',
        await key,
        new TextEncoder().encode(hmacSigningString(method, path, ts, nonce, digest)),
      );
      return {
        'x-agent-id': c.agentId,
        'x-timestamp': ts,
        'x-nonce': nonce,
        'x-signature': btoa(String.fromCharCode(...new Uint8Array(mac))),
      };
    };
  }
  const lifetime = c.lifetimeSec ?? 300;
  const audience = c.audience ?? c.agent.slice(c.agent.lastIndexOf('@') + 1);
  const key: Promise<CryptoKey> =
    typeof c.privateKey === 'string'
      ? importPKCS8(c.privateKey, 'EdDSA')
      : (importJWK(
          { kty: 'OKP', crv: 'Ed25519', d: base64url(c.privateKey), x: base64url(ed.getPublicKey(c.privateKey)) },
          'EdDSA',
        ) as Promise<CryptoKey>);
  let current: { jwt: string; renewAt: number } | undefined;
  return async () => {
    const now = Date.now() / 1000;
    if (!current || now >= current.renewAt) {
      const iat = Math.floor(now);
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: c.kid, typ: 'JWT' })
        .setIssuer(c.agent)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(iat + lifetime)
        .sign(await key);
      current = { jwt, renewAt: iat + lifetime * (1 - RENEW_AT) };
    }
    return { authorization: `Bearer ${current.jwt}` };
  };
}
