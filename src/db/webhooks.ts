// Webhook endpoints (migrations/0012) and the push worker's outcome of one delivery
// attempt. Every message statement names to_agent_id (one shard on Citus) and reads no
// column inside a non-immutable function (docs/scaling.md).
import type { Queryable } from './pool.js';

export interface WebhookEndpointRow {
  id: string;
  agent_id: string;
  url: string;
  secret: Buffer;
  ed25519_seed: Buffer | null;
  types: string[] | null;
  disabled_at: Date | null;
  disabled_reason: string | null;
  created_at: Date;
}

export type NewEndpoint = Pick<WebhookEndpointRow, 'id' | 'agent_id' | 'url' | 'secret' | 'ed25519_seed' | 'types'>;

/** Inserts an endpoint; undefined when the agent already has one at this URL. */
export async function insertEndpoint(db: Queryable, e: NewEndpoint): Promise<WebhookEndpointRow | undefined> {
  const { rows } = await db.query<WebhookEndpointRow>(
    `INSERT INTO webhook_endpoint (id, agent_id, url, secret, ed25519_seed, types)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (agent_id, url) DO NOTHING
     RETURNING *`,
    [e.id, e.agent_id, e.url, e.secret, e.ed25519_seed, e.types],
  );
  return rows[0];
}

/** One agent's endpoints, or every agent's (agentId undefined), oldest first. */
export async function listEndpoints(db: Queryable, agentId?: string): Promise<WebhookEndpointRow[]> {
  const { rows } = await db.query<WebhookEndpointRow>(
    'SELECT * FROM webhook_endpoint WHERE ($1::text IS NULL OR agent_id = $1) ORDER BY created_at, id',
    [agentId ?? null],
  );
  return rows;
}

/** The endpoints the push worker delivers to (of active agents), with their agent's domain. */
export async function activeEndpoints(db: Queryable): Promise<(WebhookEndpointRow & { domain: string })[]> {
  const { rows } = await db.query<WebhookEndpointRow & { domain: string }>(
    `SELECT w.*, a.domain FROM webhook_endpoint w JOIN agent a ON a.id = w.agent_id
      WHERE w.disabled_at IS NULL AND a.status = 'active' ORDER BY w.created_at, w.id`,
  );
  return rows;
}

/** Removes an endpoint (of `agentId` when given); false when there was none. */
export async function deleteEndpoint(db: Queryable, id: string, agentId?: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'DELETE FROM webhook_endpoint WHERE id = $1 AND ($2::text IS NULL OR agent_id = $2)',
    [id, agentId ?? null],
  );
  return rowCount === 1;
}

/** Disables (with why) or re-enables (reason null) an endpoint; the row, or undefined when absent. */
export async function setDisabled(
  db: Queryable,
  id: string,
  reason: string | null,
  agentId?: string,
): Promise<WebhookEndpointRow | undefined> {
  const { rows } = await db.query<WebhookEndpointRow>(
    reason === null
      ? `UPDATE webhook_endpoint SET disabled_at = NULL, disabled_reason = NULL
          WHERE id = $1 AND ($2::text IS NULL OR agent_id = $2) RETURNING *`
      : `UPDATE webhook_endpoint SET disabled_at = now(), disabled_reason = $3
          WHERE id = $1 AND ($2::text IS NULL OR agent_id = $2) AND disabled_at IS NULL RETURNING *`,
    reason === null ? [id, agentId ?? null] : [id, agentId ?? null, reason],
  );
  return rows[0];
}

/**
 * What becomes of a pushed message that was not acknowledged: `retry` returns it to the
 * inbox, visible again after `delayMs`; `release` returns it at once (its endpoint was
 * disabled: pulls or a re-enabled endpoint take it); `dead` ends it with `reason`.
 * `log` (the attempt: endpoint, HTTP status or error) joins its delivery_log.
 */
export type PushSettlement =
  | { kind: 'retry'; delayMs: number; log: Record<string, unknown> }
  | { kind: 'release'; log: Record<string, unknown> }
  | { kind: 'dead'; reason: string; log: Record<string, unknown> };

/** Records a failed attempt under the lease that made it; false when the lease was no longer current. */
export async function settlePush(
  db: Queryable,
  agentId: string,
  ref: { id: string; lease_id: string },
  s: PushSettlement,
): Promise<boolean> {
  // One statement per kind: Citus refuses now() inside CASE.
  const attempt = "jsonb_build_object('at', now(), 'event', 'webhook') || $4::jsonb";
  const set = {
    retry: `status = 'delivered', visible_at = now() + $5::bigint * interval '1 millisecond',
            delivery_log = delivery_log || jsonb_build_array(${attempt} || jsonb_build_object('retry_at', now() + $5::bigint * interval '1 millisecond'))`,
    release: `status = 'delivered', visible_at = now(), delivery_log = delivery_log || jsonb_build_array(${attempt})`,
    dead: `status = 'dead', delivery_log = delivery_log || jsonb_build_array(${attempt},
            jsonb_build_object('at', now(), 'event', 'dead', 'reason', $5::text))`,
  }[s.kind];
  const extra = s.kind === 'retry' ? [s.delayMs] : s.kind === 'dead' ? [s.reason] : [];
  const { rowCount } = await db.query(
    `UPDATE message SET ${set}, lease_until = NULL
      WHERE to_agent_id = $1 AND id = $2 AND lease_id = $3 AND status = 'leased'`,
    [agentId, ref.id, ref.lease_id, JSON.stringify(s.log), ...extra],
  );
  if (rowCount === 1 && s.kind === 'release') await db.query('SELECT pg_notify($1, $2)', ['admp_inbox', agentId]);
  return rowCount === 1;
}
