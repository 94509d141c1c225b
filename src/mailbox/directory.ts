// Who is a recipient: a local agent (one of our domains, in the agent table) or a
// remote agent (any other domain, reached by mail). Local lookups are cached for a
// few seconds because every send needs one.
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import { asciiLower, isAgentId, tryParseRecipient, type AgentAddress } from '../core/address.js';
import { findAgent, type AgentRow } from '../db/agents.js';
import { inboxHolds } from '../db/status.js';

export type Recipient =
  | {
      kind: 'local';
      agentId: string;
      /** The agent's address; the RFC 5233 detail of a plus-address is apart. */
      address: string;
      detail?: string;
    }
  | { kind: 'remote'; address: string; domain: string };

export interface Directory {
  /** Resolves `to` (an address, or a bare local agent id); unknown local agents are `unknown_recipient`. */
  resolve(to: string, field?: string): Promise<Recipient>;
  /** Whether `domain` is one of our agents domains. */
  isLocalDomain(domain: string): boolean;
  localAgent(id: string): Promise<AgentRow | undefined>;
  /** Whether an agent's inbox already holds `max` waiting messages. */
  inboxHolds(agentId: string, max: number): Promise<boolean>;
}

const CACHE_MS = 5000;

export function createDirectory(pool: pg.Pool, config: Config): Directory {
  const cache = new Map<string, { row: AgentRow | undefined; at: number }>();
  const domains = new Set(config.domains);

  async function localAgent(id: string): Promise<AgentRow | undefined> {
    const hit = cache.get(id);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.row;
    const row = await findAgent(pool, id);
    cache.set(id, { row, at: Date.now() });
    return row;
  }

  return {
    isLocalDomain: (d) => domains.has(d),
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
      // A remote plus-address is the partner's to route: it goes out as written.
      if (!domains.has(addr.domain)) return { kind: 'remote', address: lower, domain: addr.domain };
      const row = await localAgent(addr.local);
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
