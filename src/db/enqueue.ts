// Rows are created only by the SQL function enqueue_message: one statement per batch.
import type { Queryable } from './pool.js';
import type { EnqueueResult, NewMessage } from './message-row.js';

/** One rate quota counter an item is counted by (src/core/rate-quota.ts makes them). */
export interface QuotaCounter {
  /** The counter's key in rate_quota: the rule and what it counts, e.g. `partner-rate|sender_domain=…`. */
  readonly counter: string;
  readonly intervalUs: number;
  readonly burst: number;
}

/** The rate quotas a batch is counted against, in the statement that stores it (migrations/0018). */
export interface BatchQuotas {
  /** Per item: the counters it is counted by (none: not counted). */
  readonly counters: readonly (readonly QuotaCounter[] | undefined)[];
  /** Per item: its group; an item over a quota refuses its whole group (all recipients of one mail). */
  readonly groups: readonly number[];
  /** Microseconds since the epoch. */
  readonly nowUs: number;
}

/**
 * Calls enqueue_message for a batch; results come back in input order. With
 * `notify: false` the caller wakes the recipients itself after the commit
 * (notifyEnqueued), which lets concurrent batches share WAL flushes. With `quotas`,
 * the items stored new are counted against them in the same statement; an item over a
 * quota, and the rest of its group, is not stored and answers `refused`.
 */
export async function enqueueRows(
  db: Queryable,
  items: readonly NewMessage[],
  opts: { notify?: boolean; quotas?: BatchQuotas } = {},
): Promise<EnqueueResult[]> {
  const ord: number[] = [];
  const key: string[] = [];
  const interval: number[] = [];
  const burst: number[] = [];
  opts.quotas?.counters.forEach((cs, i) =>
    cs?.forEach((c) => {
      ord.push(i + 1);
      key.push(c.counter);
      interval.push(c.intervalUs);
      burst.push(c.burst);
    }),
  );
  // A named statement: parsed and planned once per connection. Its rows come as arrays
  // (pg builds no object per row) and each goes to its item's place (idx counts from 0).
  const { rows } = await db.query<EnqueueRow>({
    name: 'admp_enqueue',
    text: `SELECT idx, id, duplicate, status, conflict, refused, quota_key, quota_tat_us
             FROM enqueue_message($1::jsonb, $2, $3, $4, $5, $6, $7, $8)`,
    rowMode: 'array',
    values: [
      JSON.stringify(items),
      opts.notify ?? true,
      ord,
      key,
      interval,
      burst,
      opts.quotas?.groups ?? [],
      opts.quotas?.nowUs ?? 0,
    ],
  });
  const results = new Array<EnqueueResult>(rows.length);
  for (const [idx, id, duplicate, status, conflict, refused, quotaKey, quotaTatUs] of rows) {
    const r: EnqueueResult = { id, duplicate, status, conflict };
    // bigint: a string unless src/db/pool.ts's parser is loaded; microseconds stay far below 2^53.
    if (refused) r.refused = quotaKey ? { counter: quotaKey, tatUs: Number(quotaTatUs) } : {};
    results[idx] = r;
  }
  return results;
}

/** A row of enqueue_message, in the SELECT list's order. */
type EnqueueRow = [
  idx: number,
  id: string,
  duplicate: boolean,
  status: EnqueueResult['status'],
  conflict: boolean,
  refused: boolean,
  quotaKey: string | null,
  quotaTatUs: number | string | null,
];

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

/** A stored mail's signed content, for comparing a redelivered copy with it. */
export interface StoredMail {
  id: string;
  from_agent: string;
  type: string;
  subject: string | null;
  correlation_id: string | null;
  body: unknown;
}

/**
 * The message stored for this inbox under this source fingerprint or replay key (the
 * dedupe key enqueue_message claims: kind byte 2, then the SHA-256), if any: a
 * primary-key probe and a join on the same inbox.
 */
export async function storedMail(db: Queryable, toAgentId: string, keyHex: string): Promise<StoredMail | undefined> {
  const { rows } = await db.query<StoredMail>(
    `SELECT m.id, m.from_agent, m.type, m.subject, m.correlation_id, m.body
       FROM message_dedupe d JOIN message m ON m.id = d.message_id AND m.to_agent_id = d.to_agent_id
      WHERE d.to_agent_id = $1 AND d.key = '\\x02'::bytea || decode($2, 'hex')`,
    [toAgentId, keyHex],
  );
  return rows[0];
}
