-- 0024_outbound_delivered_stays_sent: a delivery report saying "delivered" used to set an
-- outbound message's status to `delivered`, which means "waiting in an inbox": the TTL
-- sweep then made it `dead`, the inbox gauges counted it and retention never removed it.
-- It now stays `sent` with delivered_at set (src/db/delivery-reports.ts), shown as
-- `delivered` (src/db/shown-status.ts). This moves the rows so marked before: outbound
-- mail (its log starts with `queued`, inbound mail's with `delivered`) that a report
-- marked delivered (delivered_at set; an outbound message has none until then).
-- delivered_at and the log are kept. Safe twice (a moved row is no longer `delivered`);
-- valid on Citus (constants and immutable operators on columns only).
UPDATE message SET status = 'sent'
 WHERE status = 'delivered' AND channel = 'smtp' AND delivered_at IS NOT NULL
   AND delivery_log -> 0 ->> 'event' = 'queued';
