// Rows are created only by the SQL function enqueue_message: one statement per batch.
import type { Queryable } from './pool.js';
import type { EnqueueResult, NewMessage } from './message-row.js';

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
