// The claim path: claim with a lease, ack, nack/extend. Every statement names the
// inbox (to_agent_id) it changes.
import { randomUUID } from 'node:crypto';
import type { Queryable } from './pool.js';
import { LOG } from './delivery-log.js';
import type { Claimed, LeaseOutcome, LeaseRef, MessageStatus, PulledRow } from './message-row.js';

/**
 * The ack of a batch of leases ($1 agent, $2 ids, $3 lease ids). A lease is honoured
 * while it is the message's current one, even after it expired if nobody re-leased the
 * message meanwhile (the work is done; a redelivery would only duplicate it). A
 * superseded lease matches nothing, so it changes nothing.
 */
const ackUpdate = (
  log: string,
) => `UPDATE message m SET status = 'acked', acked_at = now(), lease_until = NULL, delivery_log = ${log}
       FROM unnest($2::uuid[], $3::uuid[]) AS r(id, lease_id)
      WHERE m.to_agent_id = $1 AND m.id = r.id AND m.lease_id = r.lease_id AND m.status IN ('leased', 'delivered')
     RETURNING m.id`;
const ACK_UPDATE = ackUpdate(LOG('acked'));

/**
 * Claims up to `max` deliverable messages of one agent in FIFO order (seq: one bigint
 * sequence drawn at insert, in batch order; migrations/0009), and returns them in it,
 * skipping rows other consumers hold (FOR UPDATE SKIP LOCKED). The claimed rows get a
 * fresh lease_id, one per claim, made here: the receipt handle that ack/nack must present
 * with the message id. Every part of the statement filters on to_agent_id = $1, so on
 * Citus it is one single-shard statement (SKIP LOCKED works there; a join on
 * picked.to_agent_id would run it on every shard), and it calls no volatile function
 * (Citus refuses gen_random_uuid() in an UPDATE). Acks of the
 * previous batch (`acks`) ride in the same statement, so a consumer cycle is one
 * transaction and one WAL flush; an acked row is never claimed again by it. The claimed
 * rows are updated by `id = ANY (ARRAY(SELECT id FROM picked))`, not by a join with
 * `picked`: the generic plan does not know LIMIT's value and assumes a tenth of the inbox
 * is picked, so the join was planned as a hash join over a bitmap scan of the whole inbox
 * (21.8 ms instead of 0.5 ms for 10 rows of a 20,000-message inbox); the array probes the
 * primary key (test/db/claim-plan.test.ts).
 */
export async function claim(
  db: Queryable,
  agentId: string,
  max: number,
  visibilitySec: number,
  acks: readonly LeaseRef[] = [],
): Promise<Claimed> {
  // Named statements (here and in ack): planned once per connection, not per call;
  // planning this statement costs about as much as running it.
  return runClaim(db, 'admp_claim', CLAIM, [agentId, acks, max, visibilitySec]);
}

/**
 * The same claim for the webhook push worker (src/webhooks): only messages of `types`
 * (all when null), and the acks it carries (of messages the endpoint answered 2xx) name
 * that endpoint in their delivery_log entry.
 */
export async function claimForPush(
  db: Queryable,
  agentId: string,
  max: number,
  visibilitySec: number,
  acks: readonly LeaseRef[],
  endpointId: string,
  types: readonly string[] | null,
): Promise<ClaimedForPush> {
  return runClaim(
    db,
    'admp_claim_push',
    CLAIM_PUSH,
    [agentId, acks, max, visibilitySec],
    [endpointId, types],
  ) as Promise<ClaimedForPush>;
}

const claimSql = (ackLog: string, filter: string, columns = '') => `WITH acked AS (${ackUpdate(ackLog)}),
     picked AS (
       SELECT id FROM message
        WHERE to_agent_id = $1 AND status = 'delivered' AND visible_at <= now() AND expires_at > now()
          AND id <> ALL ($2::uuid[])${filter}
        ORDER BY seq
        LIMIT $4
        FOR UPDATE SKIP LOCKED),
     claimed AS (
       UPDATE message m
          SET status = 'leased', lease_id = $6, lease_until = now() + make_interval(secs => $5),
              attempts = m.attempts + 1
        WHERE m.to_agent_id = $1 AND m.id = ANY (ARRAY(SELECT id FROM picked))
       RETURNING m.id, m.lease_id, m.lease_until, m.from_agent, m.channel, m.type, m.subject, m.body,
                 m.correlation_id, m.in_reply_to, m.attempts, m.created_at, m.auth, m.headers->>'detail' AS detail,
                 m.seq${columns})
     -- One row even when nothing was claimed, to carry the acked ids. UPDATE … RETURNING
     -- keeps no order: the answer is sorted here.
     SELECT c.*, a.ids AS acked
       FROM (SELECT coalesce(array_agg(id), '{}') AS ids FROM acked) a
       LEFT JOIN claimed c ON true
      ORDER BY c.seq`;
const CLAIM = claimSql(LOG('acked'), '');
const CLAIM_PUSH = claimSql(
  LOG('acked', "jsonb_build_object('webhook', $7::text)"),
  '\n          AND ($8::text[] IS NULL OR type = ANY ($8::text[]))',
  ', m.expires_at',
);

/** A claim of the push worker: its rows carry their expiry (retries stop at the TTL). */
export interface ClaimedForPush extends Claimed {
  rows: (PulledRow & { expires_at: Date })[];
}

async function runClaim(
  db: Queryable,
  name: string,
  text: string,
  [agentId, acks, max, visibilitySec]: [string, readonly LeaseRef[], number, number],
  extra: unknown[] = [],
): Promise<Claimed> {
  const ids = acks.map((r) => r.id);
  const { rows } = await db.query<PulledRow & { acked: string[]; seq: number }>({
    name,
    text,
    values: [agentId, ids, acks.map((r) => r.lease_id), max, visibilitySec, randomUUID(), ...extra],
  });
  const claimed = rows.filter((r) => r.id !== null).map(({ acked: _, seq: __, ...m }) => m as PulledRow);
  return { rows: claimed, acked: await ackOutcomes(db, agentId, ids, rows[0]!.acked) };
}

/** Explains why a lease operation matched no row: absent, someone else's, or a stale lease. */
async function classifyMisses(db: Queryable, agentId: string, ids: string[]): Promise<Map<string, LeaseOutcome>> {
  const out = new Map<string, LeaseOutcome>(ids.map((id) => [id, 'not_found']));
  if (ids.length === 0) return out;
  const { rows } = await db.query<{ id: string; to_agent_id: string }>(
    'SELECT id, to_agent_id FROM message WHERE id = ANY($1::uuid[])',
    [ids],
  );
  for (const r of rows) out.set(r.id, r.to_agent_id === agentId ? 'lease_conflict' : 'forbidden');
  return out;
}

/** Each ack's outcome: `ok` when its row was updated, else why not (classifyMisses). */
async function ackOutcomes(
  db: Queryable,
  agentId: string,
  ids: readonly string[],
  done: readonly string[],
): Promise<Map<string, LeaseOutcome>> {
  const ok = new Set(done);
  const misses = await classifyMisses(
    db,
    agentId,
    ids.filter((id) => !ok.has(id)),
  );
  return new Map(ids.map((id) => [id, ok.has(id) ? 'ok' : misses.get(id)!]));
}

/** Acks a batch of leases (ACK_UPDATE); each one's outcome by message id. */
export async function ack(
  db: Queryable,
  agentId: string,
  refs: readonly LeaseRef[],
): Promise<Map<string, LeaseOutcome>> {
  const ids = refs.map((r) => r.id);
  const { rows } = await db.query<{ id: string }>({
    name: 'admp_ack',
    text: ACK_UPDATE,
    values: [agentId, ids, refs.map((r) => r.lease_id)],
  });
  return ackOutcomes(
    db,
    agentId,
    ids,
    rows.map((r) => r.id),
  );
}

export type NackAction = { kind: 'extend'; sec: number } | { kind: 'release'; delaySec: number };

/** Extends a lease, or returns the message to the inbox (after a delay), or to `dead` when attempts are spent. */
export async function nack(
  db: Queryable,
  agentId: string,
  ref: LeaseRef,
  action: NackAction,
  maxAttempts: number,
): Promise<{ outcome: LeaseOutcome; status?: MessageStatus; lease_until?: Date | null }> {
  const sql =
    action.kind === 'extend'
      ? `UPDATE message m SET lease_until = now() + make_interval(secs => $4), delivery_log = ${LOG('extended', "jsonb_build_object('sec', $4::int)")}
        WHERE m.to_agent_id = $1 AND m.id = $2 AND m.lease_id = $3 AND m.status = 'leased'
       RETURNING m.status, m.lease_until`
      : // On Citus a non-immutable function may not sit inside CASE, nor take a column:
        // the time goes outside the CASE, the attempt count in by jsonb_set.
        `UPDATE message m SET
          status = CASE WHEN m.attempts >= $5 THEN 'dead'::message_status ELSE 'delivered' END,
          lease_until = NULL,
          visible_at = now() + make_interval(secs => $4),
          delivery_log = delivery_log || (jsonb_build_object('at', now()) || CASE WHEN m.attempts >= $5
            THEN jsonb_set('{"event": "dead", "reason": "max_attempts"}', '{attempts}', m.attempts::text::jsonb)
            ELSE jsonb_set('{"event": "released"}', '{delay_sec}', $4::int::text::jsonb) END)
        WHERE m.to_agent_id = $1 AND m.id = $2 AND m.lease_id = $3 AND m.status = 'leased'
       RETURNING m.status, m.lease_until`;
  const params =
    action.kind === 'extend'
      ? [agentId, ref.id, ref.lease_id, action.sec]
      : [agentId, ref.id, ref.lease_id, action.delaySec, maxAttempts];
  const { rows } = await db.query<{ status: MessageStatus; lease_until: Date | null }>(sql, params);
  if (rows[0]) {
    // Released at once: parked polls are woken now. After a delay the caller wakes them
    // when the message becomes visible (a wake-up now would only cost each poll a claim).
    if (rows[0].status === 'delivered' && action.kind === 'release' && action.delaySec === 0)
      await db.query('SELECT pg_notify($1, $2)', ['admp_inbox', agentId]);
    return { outcome: 'ok', ...rows[0] };
  }
  return { outcome: (await classifyMisses(db, agentId, [ref.id])).get(ref.id)! };
}
