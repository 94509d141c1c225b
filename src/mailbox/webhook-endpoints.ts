// Webhook endpoints: where an agent's messages are pushed (src/webhooks/ delivers them).
// An agent registers its own (HTTP API), an operator any agent's (CLI). Secrets follow the
// Standard Webhooks conventions: the HMAC secret as `whsec_` + base64 (24 to 64 bytes),
// an Ed25519 public key as `whpk_` + base64 of its 32 raw bytes.
import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import { publicKeyFromSeed } from '../core/signature.js';
import { addressOfAgent } from '../core/address.js';
import { parseAllowList, refusalOf } from '../net/guarded-fetch.js';
import {
  activeEndpoints,
  deleteEndpoint,
  insertEndpoint,
  listEndpoints,
  setDisabled,
  type WebhookEndpointRow,
} from '../db/webhooks.js';

export interface EndpointSpec {
  readonly url: string;
  /** `whsec_…`; absent: one is made. */
  readonly secret?: string;
  /** Also sign with a new Ed25519 key (`v1a`); its public key is returned. */
  readonly ed25519?: boolean;
  /** Push only messages of these types; absent: every message. */
  readonly types?: readonly string[];
}

/** An endpoint as its owner sees it (never the secret, except once at registration). */
export interface EndpointView {
  id: string;
  agent_id: string;
  url: string;
  types: string[] | null;
  public_key: string | null;
  disabled_at: Date | null;
  disabled_reason: string | null;
  created_at: Date;
}

export interface PushEndpoint {
  readonly id: string;
  readonly agentId: string;
  /** The agent's address (local@domain), the `to` of what is pushed. */
  readonly address: string;
  readonly url: string;
  readonly secret: Buffer;
  readonly ed25519Seed: Buffer | null;
  readonly types: readonly string[] | null;
}

export interface WebhookEndpoints {
  /** Registers an endpoint; the answer carries the signing secret, shown this once. */
  register(agentId: string, spec: EndpointSpec): Promise<EndpointView & { secret: string }>;
  /** One agent's endpoints, or all (operator). */
  list(agentId?: string): Promise<EndpointView[]>;
  /** Removes an endpoint (of `agentId` when given), or not_found. */
  remove(id: string, agentId?: string): Promise<void>;
  /** Re-enables a disabled endpoint (of `agentId` when given), or not_found. */
  enable(id: string, agentId?: string): Promise<EndpointView>;
  /** The endpoints to deliver to. */
  active(): Promise<PushEndpoint[]>;
  /** Stops deliveries to an endpoint (a 410 answer, a refused address), with why. */
  disable(id: string, reason: string): Promise<void>;
}

/** Endpoints one agent may have: each is a consumer with its own window of requests in flight. */
export const MAX_ENDPOINTS_PER_AGENT = 10;
const SECRET_PREFIX = 'whsec_';
const PUBLIC_KEY_PREFIX = 'whpk_';
const TYPE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

export const webhookSecret = (secret: Buffer): string => SECRET_PREFIX + secret.toString('base64');

function view(r: WebhookEndpointRow): EndpointView {
  return {
    id: r.id,
    agent_id: r.agent_id,
    url: r.url,
    types: r.types,
    public_key: r.ed25519_seed
      ? PUBLIC_KEY_PREFIX + Buffer.from(publicKeyFromSeed(r.ed25519_seed)).toString('base64')
      : null,
    disabled_at: r.disabled_at,
    disabled_reason: r.disabled_reason,
    created_at: r.created_at,
  };
}

function parseSecret(secret: string | undefined): Buffer {
  if (secret === undefined) return randomBytes(32);
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : undefined;
  const bytes = raw !== undefined && /^[A-Za-z0-9+/]+={0,2}$/.test(raw) ? Buffer.from(raw, 'base64') : undefined;
  if (!bytes || bytes.length < 24 || bytes.length > 64)
    throw new AdmpError('bad_request', 'secret: expected whsec_ followed by 24 to 64 bytes in base64', {
      field: 'secret',
    });
  return bytes;
}

export function createWebhookEndpoints(pool: pg.Pool, config: Config): WebhookEndpoints {
  const allow = parseAllowList(config.fetchAllow);

  /** An http(s) URL without credentials; an address literal must not be one the SSRF guard refuses. */
  function checkUrl(raw: string): string {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new AdmpError('bad_request', 'url: not an absolute URL', { field: 'url' });
    }
    const bad = (why: string) => new AdmpError('bad_request', `url: ${why}`, { field: 'url' });
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad('only http and https are delivered to');
    if (url.username || url.password) throw bad('credentials in the URL are not accepted; use the signing secret');
    if (url.hash) throw bad('a fragment is never sent; leave it out');
    if (url.href.length > 2048) throw bad('longer than 2048 characters');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const refused = /^[\d.]+$|:/.test(host) ? refusalOf(host, allow) : undefined;
    if (refused) throw bad(`refused: ${refused} (ADMP_FETCH_ALLOW lists the exceptions)`);
    return url.href;
  }

  function checkTypes(types: readonly string[] | undefined): string[] | null {
    if (types === undefined) return null;
    if (types.length < 1 || types.length > 50 || types.some((t) => !TYPE.test(t)))
      throw new AdmpError('bad_request', 'types: 1 to 50 message types', { field: 'types' });
    return [...new Set(types)];
  }

  const notFound = (id: string) => new AdmpError('not_found', `no webhook endpoint ${id}`);
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  return {
    async register(agentId, spec) {
      const secret = parseSecret(spec.secret);
      // Checked before the insert, not under a lock: two concurrent registrations may pass it once.
      if ((await listEndpoints(pool, agentId)).length >= MAX_ENDPOINTS_PER_AGENT)
        throw new AdmpError('bad_request', `an agent has at most ${MAX_ENDPOINTS_PER_AGENT} webhook endpoints`, {
          field: 'url',
        });
      const row = await insertEndpoint(pool, {
        id: randomUUID(),
        agent_id: agentId,
        url: checkUrl(spec.url),
        secret,
        ed25519_seed: spec.ed25519 ? randomBytes(32) : null,
        types: checkTypes(spec.types),
      }).catch((err: { code?: string }) => {
        // 23503 foreign_key_violation: no such agent.
        if (err.code === '23503') throw new AdmpError('not_found', `no agent ${agentId}`);
        throw err;
      });
      if (!row)
        throw new AdmpError('bad_request', `url: ${spec.url} is already registered; remove it first`, {
          field: 'url',
        });
      return { ...view(row), secret: webhookSecret(secret) };
    },

    list: async (agentId) => (await listEndpoints(pool, agentId)).map(view),

    async remove(id, agentId) {
      if (!UUID.test(id) || !(await deleteEndpoint(pool, id, agentId))) throw notFound(id);
    },

    async enable(id, agentId) {
      const row = UUID.test(id) ? await setDisabled(pool, id, null, agentId) : undefined;
      if (!row) throw notFound(id);
      return view(row);
    },

    active: async () =>
      (await activeEndpoints(pool)).map((r) => ({
        id: r.id,
        agentId: r.agent_id,
        address: addressOfAgent({ id: r.agent_id, domain: r.domain }),
        url: r.url,
        secret: r.secret,
        ed25519Seed: r.ed25519_seed,
        types: r.types,
      })),

    disable: async (id, reason) => void (await setDisabled(pool, id, reason)),
  };
}
