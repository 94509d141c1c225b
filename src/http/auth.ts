// Caller authentication for the agent API, three ways (docs/api.md §Authentication):
//  1. an opaque bearer token (stored as SHA-256);
//  2. a short-lived JWT the agent signs with its own Ed25519 key (EdDSA, RFC 8037),
//     verified with jose against agent_key;
//  3. HMAC headers X-Agent-Id, X-Timestamp, X-Signature over method, path,
//     timestamp and the body's SHA-256, within the configured clock skew.
import { createHash, createHmac, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import { tryParseAddress, isAgentId } from '../core/address.js';
import { agentByToken, findAgent, hmacSecrets, TOKEN_PREFIX } from '../db/agents.js';
import type { Caller } from '../mailbox/mailbox.js';

/** Looks up one of our agents' valid Ed25519 public keys (raw 32 bytes) by (domain, kid). */
export type LocalKeyLookup = (domain: string, kid: string, agent: string) => Promise<Buffer | undefined>;

export interface Authenticator {
  authenticate(req: FastifyRequest): Promise<Caller>;
}

const unauthorized = (why: string) => new AdmpError('unauthorized', why);
// RFC 8410: SubjectPublicKeyInfo prefix of a raw Ed25519 public key.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const JWT_MAX_LIFETIME_SEC = 3600;

export function hmacBase(method: string, path: string, timestamp: string, body: Buffer | string): string {
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${createHash('sha256').update(body).digest('hex')}`;
}

export function createAuthenticator(pool: pg.Pool, config: Config, findLocalKey: LocalKeyLookup): Authenticator {
  const tokenCache = new Map<string, { caller: Caller; at: number }>();
  const cacheMs = config.authCacheSec * 1000;

  async function caller(agentId: string): Promise<Caller> {
    const a = await findAgent(pool, agentId);
    if (!a || a.status !== 'active') throw unauthorized('unknown or disabled agent');
    return { agentId: a.id, domain: a.domain, address: `${a.id}@${a.domain}` };
  }

  async function byToken(token: string): Promise<Caller> {
    const hit = tokenCache.get(token);
    if (hit && Date.now() - hit.at < cacheMs) return hit.caller;
    const a = await agentByToken(pool, token);
    if (!a) throw unauthorized('invalid bearer token');
    const c = { agentId: a.id, domain: a.domain, address: `${a.id}@${a.domain}` };
    if (cacheMs > 0) tokenCache.set(token, { caller: c, at: Date.now() });
    return c;
  }

  async function byJwt(jwt: string): Promise<Caller> {
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
    const raw = await findLocalKey(addr.domain, kid, addr.address);
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
        audience: [...config.domains],
        requiredClaims: ['exp', 'iat'],
        clockTolerance: config.clockSkewSec,
      });
      if (payload.exp! - payload.iat! > JWT_MAX_LIFETIME_SEC)
        throw unauthorized(`JWT lifetime over ${JWT_MAX_LIFETIME_SEC} s`);
    } catch (err) {
      if (err instanceof AdmpError) throw err;
      throw unauthorized(`JWT rejected: ${(err as Error).message}`);
    }
    const c = await caller(addr.local);
    if (c.address !== addr.address) throw unauthorized('JWT issuer is not a local agent');
    return c;
  }

  async function byHmac(req: FastifyRequest, idHeader: string): Promise<Caller> {
    const ts = req.headers['x-timestamp'];
    const sig = req.headers['x-signature'];
    if (typeof ts !== 'string' || typeof sig !== 'string')
      throw unauthorized('HMAC auth needs X-Agent-Id, X-Timestamp and X-Signature');
    if (!/^\d{1,12}$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > config.clockSkewSec) {
      throw unauthorized(`X-Timestamp outside ±${config.clockSkewSec} s`);
    }
    const id = idHeader.toLowerCase();
    const agentId = isAgentId(id) ? id : tryParseAddress(id)?.local;
    if (!agentId) throw unauthorized('X-Agent-Id is not an agent id');
    const base = hmacBase(req.method, req.url, ts, req.rawBody ?? Buffer.alloc(0));
    const given = Buffer.from(sig, 'base64');
    for (const secret of await hmacSecrets(pool, agentId)) {
      const want = createHmac('sha256', secret).update(base).digest();
      if (given.length === want.length && timingSafeEqual(given, want)) {
        const c = await caller(agentId);
        if (isAgentId(id) || c.address === id) return c;
      }
    }
    throw unauthorized('HMAC signature does not verify');
  }

  return {
    async authenticate(req) {
      const idHeader = req.headers['x-agent-id'];
      if (typeof idHeader === 'string' && !req.headers.authorization) return byHmac(req, idHeader);
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!m) throw unauthorized('missing credentials: Authorization: Bearer <token|JWT>, or HMAC headers');
      const cred = m[1]!;
      if (cred.startsWith(TOKEN_PREFIX)) return byToken(cred);
      if (cred.split('.').length === 3) return byJwt(cred);
      throw unauthorized('unrecognised bearer credential');
    },
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    caller?: Caller;
  }
}
