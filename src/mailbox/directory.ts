// Who is a recipient: a local agent (one of our domains, in the agent table) or a
// remote agent (any other domain, reached by mail). A local address is an agent's
// (`bob@…`, plus-addressed or not), or an address token (`t-…@…`) standing for one;
// under a wildcard domain it must be an existing tenant's. Local lookups are cached
// for a few seconds because every send needs one.
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import {
  addressOfAgent,
  agentIdOf,
  asciiLower,
  isAddressToken,
  isAgentId,
  tryParseRecipient,
  type AgentAddress,
} from '../core/address.js';
import { classifyDomain } from '../core/domains.js';
import { findAgent, type AgentRow } from '../db/agents.js';
import { findAddressToken } from '../db/address-tokens.js';
import { tenantExists } from '../db/tenants.js';
import { inboxHolds } from '../db/status.js';

export type Recipient =
  | {
      kind: 'local';
      agentId: string;
      /** The agent's address; the RFC 5233 detail of a plus-address is apart. */
      address: string;
      detail?: string;
      /** The address token the mail came to (`t-…@…`), which the agent's address stands behind. */
      token?: string;
    }
  | { kind: 'remote'; address: string; domain: string };

export interface Directory {
  /** Resolves `to` (an address, or a bare local agent id); unknown local agents are `unknown_recipient`. */
  resolve(to: string, field?: string): Promise<Recipient>;
  /** Whether mail for `domain` is ours to take: one of our domains, or a subdomain under one of its wildcards. */
  isLocalDomain(domain: string): boolean;
  localAgent(id: string): Promise<AgentRow | undefined>;
  /** Whether an agent's inbox already holds `max` waiting messages. */
  inboxHolds(agentId: string, max: number): Promise<boolean>;
}

const CACHE_MS = 5000;

export function createDirectory(pool: pg.Pool, config: Config): Directory {
  const cache = new Map<string, { row: AgentRow | undefined; at: number }>();
  // Only tenants found are cached: one added a moment ago is found at once.
  const tenants = new Map<string, number>();

  async function localAgent(id: string): Promise<AgentRow | undefined> {
    const hit = cache.get(id);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.row;
    const row = await findAgent(pool, id);
    cache.set(id, { row, at: Date.now() });
    return row;
  }

  async function isTenant(domain: string): Promise<boolean> {
    const at = tenants.get(domain);
    if (at !== undefined && Date.now() - at < CACHE_MS) return true;
    if (!(await tenantExists(pool, domain))) return false;
    if (tenants.size >= 10_000) tenants.clear();
    tenants.set(domain, Date.now());
    return true;
  }

  /** Never cached: a revoked token is refused from the moment it is revoked. */
  async function byToken(addr: AgentAddress, field: string): Promise<Recipient> {
    const t = await findAddressToken(pool, addr.local);
    if (!t || t.domain !== addr.domain || t.status !== 'active')
      throw new AdmpError('unknown_recipient', `${field}: no agent ${addr.address}`);
    if (t.revoked) throw new AdmpError('address_revoked', `${field}: ${addr.address} was revoked`);
    return {
      kind: 'local',
      agentId: t.agent_id,
      address: addressOfAgent({ id: t.agent_id, domain: t.domain }),
      token: addr.address,
    };
  }

  return {
    isLocalDomain: (d) => classifyDomain(config.domains, d) !== undefined,
    inboxHolds: (agentId, max) => inboxHolds(pool, agentId, max),
    localAgent,
    async resolve(to, field = 'to') {
      const lower = asciiLower(to);
      const parsed = isAgentId(lower) ? undefined : tryParseRecipient(to);
      if (!isAgentId(lower) && !parsed)
        throw new AdmpError('bad_request', `${field}: "${to.slice(0, 100)}" is not an agent address (local@domain)`);
      const addr: AgentAddress = parsed
        ? parsed.agent
        : { local: lower, domain: config.domains[0]!, address: `${lower}@${config.domains[0]}` };
      const where = classifyDomain(config.domains, addr.domain);
      // A remote plus-address is the partner's to route: it goes out as written.
      if (!where) return { kind: 'remote', address: lower, domain: addr.domain };
      if (where.kind === 'tenant' && !(await isTenant(addr.domain)))
        throw new AdmpError('unknown_tenant', `${field}: no tenant ${addr.domain}`);
      if (isAddressToken(addr.local)) {
        const r = await byToken(addr, field);
        return parsed?.detail ? { ...r, detail: parsed.detail } : r;
      }
      const row = await localAgent(agentIdOf(addr, where.kind === 'tenant'));
      if (!row || row.domain !== addr.domain || row.status !== 'active') {
        throw new AdmpError('unknown_recipient', `${field}: no agent ${addr.address}`);
      }
      return {
        kind: 'local',
        agentId: row.id,
        address: addr.address,
        ...(parsed?.detail ? { detail: parsed.detail } : {}),
      };
    },
  };
}
