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

/**
 * The message already stored for this inbox under this source fingerprint (the dedupe
 * key enqueue_message claims: kind byte 2, then the SHA-256), if any: one primary-key probe.
 */
export async function storedByFingerprint(
  db: Queryable,
  toAgentId: string,
  fingerprintHex: string,
): Promise<string | undefined> {
  const { rows } = await db.query<{ message_id: string }>(
    "SELECT message_id FROM message_dedupe WHERE to_agent_id = $1 AND key = '\\x02'::bytea || decode($2, 'hex')",
    [toAgentId, fingerprintHex],
  );
  return rows[0]?.message_id;
}
