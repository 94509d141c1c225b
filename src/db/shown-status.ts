// The status a user is shown for a message, derived in this one place from the stored row.
import type { MessageStatus } from './message-row.js';

/**
 * SQL for the status shown of the message row `m` (a table alias). An outbound message a
 * delivery report confirmed stays `sent` in the table, with delivered_at set: `sent` is
 * final (no claim, sweep, inbox gauge or TTL reads it, retention removes it), while a
 * stored `delivered` means "waiting in an inbox". It is shown as `delivered`
 * (docs/federation.md), the one status its sender cares about.
 */
export const shownStatus = (m: string): string =>
  `(CASE WHEN ${m}.status = 'sent' AND ${m}.delivered_at IS NOT NULL THEN 'delivered'::message_status ELSE ${m}.status END)`;

/**
 * A search condition on the status shown (`s` from a closed list, written as a literal).
 * `m.status = s` is kept in both cases so that the partial indexes by status still match;
 * only `sent` and `delivered` differ from the stored status.
 */
export function shownStatusIs(m: string, s: MessageStatus): string {
  if (s !== 'sent' && s !== 'delivered') return `${m}.status = '${s}'`;
  return `${m}.status IN ('sent', 'delivered') AND ${shownStatus(m)} = '${s}'`;
}
