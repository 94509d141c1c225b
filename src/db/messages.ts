// Queue operations on the message table. Rows are created only by the SQL function
// enqueue_message (src/queue/enqueue.ts calls it); this file holds the claim path and
// the state transitions that follow it: ack, nack/extend, reply, status, dead letters.
import type pg from 'pg';
import { AdmpError } from '../errors.js';

export type MessageStatus = 'queued' | 'sent' | 'delivered' | 'leased' | 'acked' | 'failed' | 'dead';

export interface MessageRow {
  id: string;
  to_agent_id: string;
  channel: 'http' | 'smtp';
  from_agent: string;
  subject: string | null;
  type: string;
  body: unknown;
  headers: Record<string, unknown>;
  correlation_id: string | null;
  idempotency_key: string | null;
  status: MessageStatus;
  lease_id: string | null;
  lease_until: Date | null;
  attempts: number;
  ttl_sec: number;
  created_at: Date;
  expires_at: Date;
  delivered_at: Date | null;
  acked_at: Date | null;
  reply: string | null;
  in_reply_to: string | null;
  delivery_log: unknown[];
  auth: unknown;
  mail_message_id: string | null;
}

/** One item for enqueue_message: the row as the SQL function reads it. */
export interface NewMessage {
  to_agent_id: string;
  channel: 'http' | 'smtp';
  from_agent: string;
  subject?: string | null;
  type: string;
  body: unknown;
  headers?: Record<string, unknown>;
  correlation_id?: string | null;
  idempotency_key?: string | null;
  status: 'delivered' | 'queued';
  ttl_sec: number;
  in_reply_to?: string | null;
  /** SHA-256 hex (src/core/fingerprint.ts). */
  source_fingerprint?: string | null;
  auth?: unknown;
  mail_message_id?: string | null;
}

export interface EnqueueResult {
  id: string;
  duplicate: boolean;
  status: MessageStatus;
  conflict: boolean;
}

type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/**
 * Calls enqueue_message for a batch; results come back in input order. With
 * `notify: false` the caller wakes the recipients itself after the commit
 * (notifyEnqueued), which lets concurrent batches share WAL flushes.
 */
export async function enqueueRows(
  db: Queryable,
  items: readonly NewMessage[],
  opts: { notify?: boolean } = {},
): Promise<EnqueueResult[]> {
  // A named statement: parsed and planned once per connection.
  const { rows } = await db.query<EnqueueResult & { idx: number }>({
    name: 'admp_enqueue',
    text: 'SELECT idx, id, duplicate, status, conflict FROM enqueue_message($1::jsonb, $2)',
    values: [JSON.stringify(items), opts.notify ?? true],
  });
  return rows
    .sort((a, b) => a.idx - b.idx)
    .map((r) => ({ id: r.id, duplicate: r.duplicate, status: r.status, conflict: r.conflict }));
}

/**
 * Wakes long polls of these inboxes and, when asked, the outbound worker. A wake-up
 * needs no durability, so this transaction does not wait for its WAL flush
 * (synchronous_commit off).
 */
export async function notifyEnqueued(db: Queryable, inboxes: readonly string[], outbound: boolean): Promise<void> {
  await db.query({
    name: 'admp_notify',
    text: "SELECT set_config('synchronous_commit', 'off', true), notify_enqueued($1::text[], $2)",
    values: [inboxes, outbound],
  });
}

const LOG = (event: string, extra = "'{}'::jsonb") =>
  `delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', '${event}') || ${extra})`;

/** What a consumer gets for a claimed message (no history or bookkeeping columns: less to read and send). */
export type PulledRow = Pick<
  MessageRow,
  | 'id'
  | 'lease_id'
  | 'lease_until'
  | 'from_agent'
  | 'channel'
  | 'type'
  | 'subject'
  | 'body'
  | 'correlation_id'
  | 'in_reply_to'
  | 'attempts'
  | 'created_at'
  | 'auth'
>;

export interface LeaseRef {
  id: string;
  lease_id: string;
}
export type LeaseOutcome = 'ok' | 'not_found' | 'forbidden' | 'lease_conflict';

/**
 * The ack of a batch of leases ($1 agent, $2 ids, $3 lease ids). A lease is honoured
 * while it is the message's current one, even after it expired if nobody re-leased the
 * message meanwhile (the work is done; a redelivery would only duplicate it). A
 * superseded lease matches nothing, so it changes nothing.
 */
const ACK_UPDATE = `UPDATE message m SET status = 'acked', acked_at = now(), lease_until = NULL, delivery_log = ${LOG('acked')}
       FROM unnest($2::uuid[], $3::uuid[]) AS r(id, lease_id)
      WHERE m.to_agent_id = $1 AND m.id = r.id AND m.lease_id = r.lease_id AND m.status IN ('leased', 'delivered')
     RETURNING m.id`;

export interface Claimed {
  rows: PulledRow[];
  acked: Map<string, LeaseOutcome>;
}

/**
 * Claims up to `max` deliverable messages of one agent in FIFO order (created_at, id),
 * skipping rows other consumers hold (FOR UPDATE SKIP LOCKED). Each claimed row gets
 * a fresh lease_id: the receipt handle that ack/nack must present. Acks of the
 * previous batch (`acks`) ride in the same statement, so a consumer cycle is one
 * transaction and one WAL flush; an acked row is never claimed again by it.
 */
export async function claim(
  db: Queryable,
  agentId: string,
  max: number,
  visibilitySec: number,
  acks: readonly LeaseRef[] = [],
): Promise<Claimed> {
  const ids = acks.map((r) => r.id);
  // Named statements (here and in ack): planned once per connection, not per call;
  // planning this statement costs about as much as running it.
  const { rows } = await db.query<PulledRow & { acked: string[] }>({
    name: 'admp_claim',
    text: `WITH acked AS (${ACK_UPDATE}),
     picked AS (
       SELECT id, to_agent_id FROM message
        WHERE to_agent_id = $1 AND status = 'delivered' AND visible_at <= now() AND expires_at > now()
          AND id <> ALL ($2::uuid[])
        ORDER BY created_at, id
        LIMIT $4
        FOR UPDATE SKIP LOCKED),
     claimed AS (
       UPDATE message m
          SET status = 'leased', lease_id = gen_random_uuid(), lease_until = now() + make_interval(secs => $5),
              attempts = m.attempts + 1
         FROM picked
        WHERE m.id = picked.id AND m.to_agent_id = picked.to_agent_id
       RETURNING m.id, m.lease_id, m.lease_until, m.from_agent, m.channel, m.type, m.subject, m.body,
                 m.correlation_id, m.in_reply_to, m.attempts, m.created_at, m.auth)
     -- One row even when nothing was claimed, to carry the acked ids.
     SELECT c.*, a.ids AS acked
       FROM (SELECT coalesce(array_agg(id), '{}') AS ids FROM acked) a
       LEFT JOIN claimed c ON true`,
    values: [agentId, ids, acks.map((r) => r.lease_id), max, visibilitySec],
  });
  const claimed = rows.filter((r) => r.id !== null).map(({ acked: _, ...m }) => m as PulledRow);
  claimed.sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : 1));
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
      : `UPDATE message m SET
          status = CASE WHEN m.attempts >= $5 THEN 'dead'::message_status ELSE 'delivered' END,
          lease_until = NULL,
          visible_at = now() + make_interval(secs => $4),
          delivery_log = delivery_log || jsonb_build_array(CASE WHEN m.attempts >= $5
            THEN jsonb_build_object('at', now(), 'event', 'dead', 'reason', 'max_attempts', 'attempts', m.attempts)
            ELSE jsonb_build_object('at', now(), 'event', 'released', 'delay_sec', $4::int) END)
        WHERE m.to_agent_id = $1 AND m.id = $2 AND m.lease_id = $3 AND m.status = 'leased'
       RETURNING m.status, m.lease_until`;
  const params =
    action.kind === 'extend'
      ? [agentId, ref.id, ref.lease_id, action.sec]
      : [agentId, ref.id, ref.lease_id, action.delaySec, maxAttempts];
  const { rows } = await db.query<{ status: MessageStatus; lease_until: Date | null }>(sql, params);
  if (rows[0]) {
    if (rows[0].status === 'delivered') await db.query('SELECT pg_notify($1, $2)', ['admp_inbox', agentId]);
    return { outcome: 'ok', ...rows[0] };
  }
  return { outcome: (await classifyMisses(db, agentId, [ref.id])).get(ref.id)! };
}

/** A message as its sender or recipient may see it; undefined when absent, 'forbidden' for anyone else. */
export async function messageFor(
  db: Queryable,
  id: string,
  agentId: string,
  address: string,
): Promise<MessageRow | 'forbidden' | undefined> {
  const { rows } = await db.query<MessageRow>('SELECT * FROM message WHERE id = $1', [id]);
  const row = rows[0];
  if (!row) return undefined;
  return row.to_agent_id === agentId || row.from_agent === address ? row : 'forbidden';
}

/** Locks the original of a reply (it must be in the caller's inbox). */
export async function lockForReply(client: pg.PoolClient, id: string, agentId: string): Promise<MessageRow> {
  const { rows } = await client.query<MessageRow>('SELECT * FROM message WHERE id = $1 FOR UPDATE', [id]);
  const row = rows[0];
  if (!row) throw new AdmpError('not_found', `no message ${id}`);
  if (row.to_agent_id !== agentId) throw new AdmpError('forbidden', `message ${id} is not in your inbox`);
  return row;
}

export async function recordReply(
  client: pg.PoolClient,
  original: MessageRow,
  replyId: string,
  leaseId: string | undefined,
): Promise<void> {
  const { rowCount } = await client.query(
    `UPDATE message SET reply = $3::uuid,
            status = CASE WHEN $4::uuid IS NOT NULL THEN 'acked'::message_status ELSE status END,
            acked_at = CASE WHEN $4::uuid IS NOT NULL THEN now() ELSE acked_at END,
            lease_until = CASE WHEN $4::uuid IS NOT NULL THEN NULL ELSE lease_until END,
            delivery_log = delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', 'replied', 'reply', $3::text))
                           || CASE WHEN $4::uuid IS NOT NULL THEN jsonb_build_array(jsonb_build_object('at', now(), 'event', 'acked')) ELSE '[]'::jsonb END
      WHERE id = $1 AND to_agent_id = $2
        AND ($4::uuid IS NULL OR (lease_id = $4::uuid AND status IN ('leased', 'delivered')))`,
    [original.id, original.to_agent_id, replyId, leaseId ?? null],
  );
  if (rowCount === 0)
    throw new AdmpError('lease_conflict', `lease ${leaseId} is no longer current for message ${original.id}`);
}

export async function inboxDepth(db: Queryable, agentId: string): Promise<Record<MessageStatus, number>> {
  const { rows } = await db.query<{ status: MessageStatus; n: number }>(
    'SELECT status, count(*)::int AS n FROM message WHERE to_agent_id = $1 GROUP BY status',
    [agentId],
  );
  const out = { queued: 0, sent: 0, delivered: 0, leased: 0, acked: 0, failed: 0, dead: 0 };
  for (const r of rows) out[r.status] = r.n;
  return out;
}

export async function listDead(db: Queryable, agentId: string, limit: number, before?: string): Promise<MessageRow[]> {
  const { rows } = await db.query<MessageRow>(
    `SELECT * FROM message WHERE to_agent_id = $1 AND status = 'dead'
        AND ($3::timestamptz IS NULL OR created_at < $3)
      ORDER BY created_at DESC, id LIMIT $2`,
    [agentId, limit, before ?? null],
  );
  return rows;
}

/** Requeues dead letters (all, or the given ids) with a fresh attempt count and TTL. */
export async function redrive(db: Queryable, agentId: string, ids: readonly string[] | 'all'): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE message SET status = 'delivered', attempts = 0, lease_until = NULL, lease_id = NULL, visible_at = now(),
            expires_at = now() + make_interval(secs => ttl_sec), delivery_log = ${LOG('redriven')}
      WHERE to_agent_id = $1 AND status = 'dead' AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))
     RETURNING id`,
    [agentId, ids === 'all' ? null : ids],
  );
  if (rows.length > 0) await db.query('SELECT pg_notify($1, $2)', ['admp_inbox', agentId]);
  return rows.map((r) => r.id);
}

/**
 * Returns expired leases to the inbox, or to `dead` once attempts are spent or the
 * TTL has passed, and kills unleased messages whose TTL passed. Safe to run from
 * several instances at once: each statement locks only the rows it changes
 * (SKIP LOCKED) and re-checks the condition under the lock.
 */
export async function sweepExpired(
  db: Queryable,
  maxAttempts: number,
  batch = 1000,
): Promise<{ returned: number; dead: { reason: string; n: number }[] }> {
  const leases = await db.query<{ to_agent_id: string; status: MessageStatus; reason: string | null }>(
    `WITH due AS (
       SELECT id, to_agent_id FROM message WHERE status = 'leased' AND lease_until < now()
        ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED),
     decided AS (
       SELECT m.id, m.to_agent_id,
              CASE WHEN m.expires_at <= now() THEN 'ttl_expired' WHEN m.attempts >= $1 THEN 'max_attempts' END AS reason
         FROM message m JOIN due USING (id, to_agent_id))
     UPDATE message m
        SET status = CASE WHEN d.reason IS NULL THEN 'delivered'::message_status ELSE 'dead' END,
            lease_until = NULL,
            delivery_log = m.delivery_log || jsonb_build_array(CASE WHEN d.reason IS NULL
              THEN jsonb_build_object('at', now(), 'event', 'lease_expired', 'attempts', m.attempts)
              ELSE jsonb_build_object('at', now(), 'event', 'dead', 'reason', d.reason, 'attempts', m.attempts) END)
       FROM decided d
      WHERE m.id = d.id AND m.to_agent_id = d.to_agent_id
     RETURNING m.to_agent_id, m.status, d.reason`,
    [maxAttempts, batch],
  );
  const ttl = await db.query<{ n: number }>(
    `WITH due AS (
       SELECT id, to_agent_id FROM message WHERE status IN ('queued', 'delivered') AND expires_at <= now()
        LIMIT $1 FOR UPDATE SKIP LOCKED)
     UPDATE message m SET status = 'dead',
            delivery_log = m.delivery_log || jsonb_build_array(jsonb_build_object('at', now(), 'event', 'dead', 'reason', 'ttl_expired'))
       FROM due WHERE m.id = due.id AND m.to_agent_id = due.to_agent_id
     RETURNING 1 AS n`,
    [batch],
  );
  const returnedAgents = new Set(leases.rows.filter((r) => r.status === 'delivered').map((r) => r.to_agent_id));
  for (const agent of returnedAgents) await db.query('SELECT pg_notify($1, $2)', ['admp_inbox', agent]);
  const deadBy = new Map<string, number>();
  for (const r of leases.rows) if (r.reason) deadBy.set(r.reason, (deadBy.get(r.reason) ?? 0) + 1);
  if (ttl.rowCount) deadBy.set('ttl_expired', (deadBy.get('ttl_expired') ?? 0) + ttl.rowCount);
  return {
    returned: leases.rows.filter((r) => r.status === 'delivered').length,
    dead: [...deadBy].map(([reason, n]) => ({ reason, n })),
  };
}
