// Caller authentication for the agent API, three ways (docs/api.md §Authentication):
//  1. an opaque bearer token (stored as SHA-256);
//  2. a short-lived JWT the agent signs with its own Ed25519 key (EdDSA, RFC 8037),
//     verified with jose against agent_key;
//  3. HMAC headers X-Agent-Id, X-Timestamp, X-Nonce, X-Signature over method, path,
//     timestamp, nonce and the body's SHA-256, within the configured clock skew; each
//     nonce is accepted once while its timestamp is acceptable, so a captured request
//     cannot be played again.
// Then, for an agent bound to client certificates, the connection's certificate
// (mutual TLS, client-cert.ts): both factors or nothing.
import { createHash, createHmac, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import {
  addressOfAgent,
  agentIdOf,
  asciiLower,
  isAgentId,
  tryParseAddress,
  type AgentAddress,
} from '../core/address.js';
import { classifyDomain } from '../core/domains.js';
import { hmacSigningString } from '../core/request-signing.js';
import type { Caller } from '../mailbox/mailbox.js';
import { TOKEN_PREFIX, type AuthAgentRow, type Credentials } from '../mailbox/credentials.js';
import type { CertBinding } from '../core/client-cert.js';
import { checkClientCertificate } from './client-cert.js';
import { createGate } from '../core/gate.js';

/**
 * A caller and the client certificates its agent is bound to (mutual TLS), side by side:
 * `caller` is handed out as it is (cached with a token), no copy made per request.
 */
interface AuthCaller {
  readonly caller: Caller;
  readonly certs: readonly CertBinding[];
}

export interface Authenticator {
  authenticate(req: FastifyRequest): Promise<Caller>;
  /**
   * Throws when `req`'s caller may no longer act: for a long poll woken after it parked.
   * A bearer token is looked up again (through the cache, so revoked within
   * ADMP_AUTH_CACHE_SEC); for a signed request (JWT, HMAC), whose signature was checked
   * once, its agent must still be active.
   */
  recheck(req: FastifyRequest, caller: Caller): Promise<void>;
}

const unauthorized = (why: string) => new AdmpError('unauthorized', why);
// RFC 8410: SubjectPublicKeyInfo prefix of a raw Ed25519 public key.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const JWT_MAX_LIFETIME_SEC = 3600;
// 16 to 128 characters: at least 96 bits when random base64url, as UUIDs and ULIDs are.
const NONCE = /^[A-Za-z0-9_-]{16,128}$/;
// An HMAC-SHA256 in standard base64 has exactly one spelling: 43 characters and one '='.
// Buffer.from(x, 'base64') also takes base64url, missing padding and stray characters.
const MAC_BASE64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export function hmacBase(
  method: string,
  path: string,
  timestamp: string,
  nonce: string,
  body: Buffer | string,
): string {
  return hmacSigningString(method, path, timestamp, nonce, createHash('sha256').update(body).digest('hex'));
}

/**
 * Why a verified JWT's lifetime is refused, if it is. `iat` in the future (beyond the
 * skew) or after `exp` would stretch a token past the 1 h limit, so both are checked
 * against the clock, not only against each other.
 */
export function jwtLifetimeProblem(iat: number, exp: number, nowSec: number, skewSec: number): string | undefined {
  if (iat > nowSec + skewSec) return 'JWT iat is in the future';
  if (exp <= iat) return 'JWT exp is not after iat';
  if (exp - iat > JWT_MAX_LIFETIME_SEC) return `JWT lifetime over ${JWT_MAX_LIFETIME_SEC} s`;
  if (exp - nowSec > JWT_MAX_LIFETIME_SEC + skewSec) return `JWT expires more than ${JWT_MAX_LIFETIME_SEC} s from now`;
  return undefined;
}

export function createAuthenticator(credentials: Credentials, config: Config): Authenticator {
  const tokenCache = new Map<string, { caller: AuthCaller; at: number }>();
  const cacheMs = config.authCacheSec * 1000;
  // Token lookups the cache cannot answer hold at most a quarter of the pool: thousands of
  // clients arriving at once (long polls after a restart) queue here, not ahead of sends
  // in the pool's queue; the long polls' claims hold at most another half (src/mailbox).
  const lookups = createGate(Math.max(1, Math.floor(config.pgPoolMax / 4)));

  const toCaller = (a: AuthAgentRow): AuthCaller => ({
    caller: { agentId: a.id, domain: a.domain, address: addressOfAgent(a) },
    certs: a.client_certs,
  });

  const idOf = (addr: AgentAddress): string =>
    agentIdOf(addr, classifyDomain(config.domains, addr.domain)?.kind === 'tenant');

  async function caller(agentId: string): Promise<AuthCaller> {
    const a = await credentials.activeAgent(agentId);
    if (!a) throw unauthorized('unknown or disabled agent');
    return toCaller(a);
  }

  async function byToken(token: string): Promise<AuthCaller> {
    const hit = tokenCache.get(token);
    if (hit && Date.now() - hit.at < cacheMs) return hit.caller;
    if (hit) tokenCache.delete(token);
    const a = await lookups.run(() => credentials.agentByToken(token));
    if (!a) throw unauthorized('invalid bearer token');
    const c = toCaller(a);
    if (cacheMs > 0) tokenCache.set(token, { caller: c, at: Date.now() });
    return c;
  }

  async function byJwt(jwt: string): Promise<AuthCaller> {
    let kid: string | undefined;
    let iss: string | undefined;
    try {
      kid = decodeProtectedHeader(jwt).kid;
      iss = decodeJwt(jwt).iss;
    } catch {
      throw unauthorized('malformed JWT');
    }
    const addr = iss ? tryParseAddress(iss) : undefined;
    if (!kid || !addr) throw unauthorized('JWT needs a kid header and an iss claim naming the agent address');
    const raw = await credentials.localPublicKey(addr.domain, kid, addr.address);
    if (!raw) throw unauthorized(`no valid key ${kid} for ${addr.address}`);
    const key: KeyObject = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, raw]),
      format: 'der',
      type: 'spki',
    });
    try {
      const { payload } = await jwtVerify(jwt, key, {
        algorithms: ['EdDSA'],
        issuer: addr.address,
        // A tenant's agent names its own subdomain (the wildcard entry is no audience).
        audience: [...config.domains.filter((d) => !d.startsWith('*.')), addr.domain],
        requiredClaims: ['exp', 'iat'],
        clockTolerance: config.clockSkewSec,
      });
      const problem = jwtLifetimeProblem(payload.iat!, payload.exp!, Date.now() / 1000, config.clockSkewSec);
      if (problem) throw unauthorized(problem);
    } catch (err) {
      if (err instanceof AdmpError) throw err;
      throw unauthorized(`JWT rejected: ${(err as Error).message}`);
    }
    const c = await caller(idOf(addr));
    if (c.caller.address !== addr.address) throw unauthorized('JWT issuer is not a local agent');
    return c;
  }

  async function byHmac(req: FastifyRequest, idHeader: string): Promise<AuthCaller> {
    const ts = req.headers['x-timestamp'];
    const sig = req.headers['x-signature'];
    const nonce = req.headers['x-nonce'];
    if (typeof ts !== 'string' || typeof sig !== 'string' || typeof nonce !== 'string')
      throw unauthorized('HMAC auth needs X-Agent-Id, X-Timestamp, X-Nonce and X-Signature');
    if (!NONCE.test(nonce)) throw unauthorized('X-Nonce must be 16 to 128 characters of A-Z a-z 0-9 _ -');
    if (!MAC_BASE64.test(sig)) throw unauthorized('X-Signature must be the HMAC-SHA256 in standard padded base64');
    if (!/^\d{1,12}$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > config.clockSkewSec) {
      throw unauthorized(`X-Timestamp outside ±${config.clockSkewSec} s`);
    }
    const id = asciiLower(idHeader);
    const addr = isAgentId(id) ? undefined : tryParseAddress(id);
    const agentId = addr ? idOf(addr) : isAgentId(id) ? id : undefined;
    if (!agentId) throw unauthorized('X-Agent-Id is not an agent id');
    const base = hmacBase(req.method, req.url, ts, nonce, req.rawBody ?? Buffer.alloc(0));
    const given = Buffer.from(sig, 'base64');
    for (const secret of await credentials.hmacSecrets(agentId)) {
      const want = createHmac('sha256', secret).update(base).digest();
      if (given.length === want.length && timingSafeEqual(given, want)) {
        const c = await caller(agentId);
        if (!isAgentId(id) && c.caller.address !== id) break;
        // Remembered while this timestamp is still acceptable: after that the request is refused anyway.
        const until = new Date((Number(ts) + config.clockSkewSec + 1) * 1000);
        if (!(await credentials.useNonceOnce(`${agentId} ${nonce}`, until)))
          throw new AdmpError('replayed_request', `X-Nonce ${nonce} was already used by ${agentId}`);
        return c;
      }
    }
    throw unauthorized('HMAC signature does not verify');
  }

  const bearerOf = (req: FastifyRequest) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];

  async function byCredential(req: FastifyRequest): Promise<AuthCaller> {
    const idHeader = req.headers['x-agent-id'];
    if (typeof idHeader === 'string' && !req.headers.authorization) return byHmac(req, idHeader);
    const cred = bearerOf(req);
    if (!cred) throw unauthorized('missing credentials: Authorization: Bearer <token|JWT>, or HMAC headers');
    if (cred.startsWith(TOKEN_PREFIX)) return byToken(cred);
    if (cred.split('.').length === 3) return byJwt(cred);
    throw unauthorized('unrecognised bearer credential');
  }

  return {
    async authenticate(req) {
      // Both factors: the credential names the agent, then its certificate binding is checked.
      const { caller, certs } = await byCredential(req);
      checkClientCertificate(req, caller.agentId, certs);
      return caller;
    },
    async recheck(req, c) {
      const cred = bearerOf(req);
      const now = cred?.startsWith(TOKEN_PREFIX) ? await byToken(cred) : await caller(c.agentId);
      if (now.caller.agentId !== c.agentId) throw unauthorized('credential no longer names this agent');
    },
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    caller?: Caller;
  }
}
