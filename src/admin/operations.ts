// The operator's view of the queue, part of the Admin service (src/admin/admin.ts)
// for the admin API, the console and the remote CLI: admin-token authentication,
// message search and detail, queue depth and age, throughput, refusals and outbound
// failures, dead letters across agents, and the policy dry-run. Orchestration only;
// the SQL is in src/db/.
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import { decide, type Decision, type Delivery } from '../core/policy.js';
import { adminTokenBySecret, type AdminTokenRow } from '../db/admin-tokens.js';
import {
  deleteDead,
  depthByStatus,
  messageDetail,
  outboundFailures,
  searchMessages,
  throughputPerMinute,
  type DetailRow,
  type OutboundFailureRow,
  type SearchFilter,
  type StatusCount,
  type SummaryRow,
} from '../db/message-search.js';
import { recentRefusals, type RefusalRow } from '../db/refusals.js';
import { redrive } from '../db/status.js';
import type { PolicySource } from '../policy/store.js';
import { bounded, boundedList } from '../core/bounds.js';

/** What one call may ask for, checked here for every adapter; the admin API's schemas declare the same numbers. */
export const OPERATIONS_LIMITS = {
  /** Messages per search page. */
  searchPage: 200,
  /** Refusals or outbound failures per listing. */
  recent: 500,
  /** Dead letters per redrive or delete. */
  messageRefs: 500,
} as const;

export type { AdminTokenRow as AdminToken } from '../db/admin-tokens.js';

export interface MessageRef {
  readonly id: string;
  readonly agent: string;
}

export interface Overview {
  at: Date;
  depth: StatusCount[];
  throughput: { minute: Date; count: number }[];
}

export interface Operations {
  /** The live admin token with this secret; `unauthorized` otherwise (agent tokens included). */
  authenticate(secret: string): Promise<AdminTokenRow>;
  search(
    filter: Omit<SearchFilter, 'from'> & { cursor?: string },
  ): Promise<{ rows: SummaryRow[]; next: string | null }>;
  message(id: string): Promise<DetailRow>;
  overview(): Promise<Overview>;
  refusals(limit: number): Promise<RefusalRow[]>;
  outboundFailures(limit: number): Promise<OutboundFailureRow[]>;
  redrive(refs: readonly MessageRef[]): Promise<string[]>;
  deleteDead(refs: readonly MessageRef[]): Promise<string[]>;
  dryRun(d: Delivery): Promise<Decision>;
}

const cursorOf = (r: SummaryRow): string => Buffer.from(`${r.micros}|${r.id}`).toString('base64url');
function parseCursor(c: string): SearchFilter['from'] {
  const m = /^(\d{1,20})\|([0-9a-f-]{36})$/.exec(Buffer.from(c, 'base64url').toString());
  if (!m) throw new AdmpError('bad_request', 'cursor: not a cursor this API gave');
  return { micros: m[1]!, id: m[2]! };
}

/**
 * Runs `fn` once per agent with that agent's ids, in the order agents first appear:
 * statements on the queue name one inbox (one shard on Citus).
 */
async function perAgent(
  refs: readonly MessageRef[],
  fn: (agent: string, ids: string[]) => Promise<string[]>,
): Promise<string[]> {
  const byAgent = new Map<string, string[]>();
  for (const r of refs) byAgent.set(r.agent, [...(byAgent.get(r.agent) ?? []), r.id]);
  const out: string[] = [];
  for (const [agent, ids] of byAgent) out.push(...(await fn(agent, ids)));
  return out;
}

const refsBounded = (refs: readonly MessageRef[]) => boundedList(refs, 'messages', 1, OPERATIONS_LIMITS.messageRefs);

export function createOperations(pool: pg.Pool, config: Config, policy: PolicySource): Operations {
  return {
    async authenticate(secret) {
      const t = await adminTokenBySecret(pool, secret);
      if (!t) throw new AdmpError('unauthorized', 'not a live admin token');
      return t;
    },

    async search({ cursor, ...f }) {
      bounded(f.limit, 'limit', 1, OPERATIONS_LIMITS.searchPage);
      if (f.after && f.before && f.after >= f.before) throw new AdmpError('bad_request', 'after must be before before');
      const rows = await searchMessages(pool, { ...f, from: cursor ? parseCursor(cursor) : undefined });
      return { rows, next: rows.length === f.limit ? cursorOf(rows[rows.length - 1]!) : null };
    },

    async message(id) {
      const m = await messageDetail(pool, id);
      if (!m) throw new AdmpError('not_found', `no message ${id}`);
      return m;
    },

    async overview() {
      const [depth, throughput] = await Promise.all([depthByStatus(pool), throughputPerMinute(pool)]);
      return { at: new Date(), depth, throughput };
    },

    refusals: async (limit) => recentRefusals(pool, bounded(limit, 'limit', 1, OPERATIONS_LIMITS.recent)),
    outboundFailures: async (limit) => outboundFailures(pool, bounded(limit, 'limit', 1, OPERATIONS_LIMITS.recent)),

    redrive: async (refs) => perAgent(refsBounded(refs), (agent, ids) => redrive(pool, agent, ids)),
    deleteDead: async (refs) => perAgent(refsBounded(refs), (agent, ids) => deleteDead(pool, agent, ids)),

    // The policy the ingress applies (file rules, then run-time rules), read fresh.
    async dryRun(d) {
      return decide(await policy.fresh(), config.domains, d);
    },
  };
}
