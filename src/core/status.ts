// The states of a message (the message_status enum of migrations/0001_core.sql), in
// lifecycle order. Plain data, so the console can import it without the schema library.
export const MESSAGE_STATUSES = ['queued', 'sent', 'delivered', 'leased', 'acked', 'failed', 'dead'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];
