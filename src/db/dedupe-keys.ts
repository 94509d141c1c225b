// Removing the dedupe keys of deleted messages (retention, the operator's dead-letter
// deletion; src/db/message-search.ts removes their search entries): a key left without its message would answer a resend with the id of a
// message that no longer exists.
import { dedupeKey } from '../core/dedupe-key.js';
import type { Queryable } from './pool.js';

/** What a DELETE … RETURNING of messages gives back, enough to recompute their keys. */
export interface DeletedMessage {
  id: string;
  to_agent_id: string;
  from_agent: string;
  idempotency_key: string | null;
  source_fingerprint: Buffer | null;
  /** To find the message's search entry (migrations/0019_message_search_table.sql). */
  created_at: Date;
}

/** The columns of message a DELETE returns for deleteDedupeKeys. */
export const DELETED_COLUMNS =
  'm.id, m.to_agent_id, m.from_agent, m.idempotency_key, m.source_fingerprint, m.created_at';

/**
 * Deletes the keys of these messages; returns how many. Each key is recomputed here
 * (src/core/dedupe-key.ts: Citus refuses convert_to over columns in a DELETE) and deleted
 * by its primary key with its message id, so a key since taken by another message stays.
 */
export async function deleteDedupeKeys(db: Queryable, gone: readonly DeletedMessage[]): Promise<number> {
  const keyed = gone.flatMap((r) => {
    const key = dedupeKey(r);
    return key ? [{ ...r, key }] : [];
  });
  if (keyed.length === 0) return 0;
  const { rowCount } = await db.query(
    `DELETE FROM message_dedupe d USING unnest($1::text[], $2::bytea[], $3::uuid[]) AS g(agent, key, id)
      WHERE d.to_agent_id = g.agent AND d.key = g.key AND d.message_id = g.id`,
    [keyed.map((k) => k.to_agent_id), keyed.map((k) => k.key), keyed.map((k) => k.id)],
  );
  return rowCount ?? 0;
}
