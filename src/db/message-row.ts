// The message row as stored, the row enqueue_message reads, and the lease types of the claim path.
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
  /** SHA-256 hex: src/core/fingerprint.ts for HTTP sends, src/core/replay.ts replayKey for signed mail. */
  source_fingerprint?: string | null;
  /**
   * Unix seconds: the dedupe key (and so the message) is kept at least until then, whatever
   * the retention period (the signature's validUntil, src/core/signature.ts; signed mail only).
   */
  replay_until?: number | null;
  auth?: unknown;
  mail_message_id?: string | null;
}

export interface EnqueueResult {
  id: string;
  duplicate: boolean;
  status: MessageStatus;
  conflict: boolean;
  /**
   * Not stored: over a rate quota (the counter that refused it, and that counter's tat
   * after the count, in microseconds since the epoch), or `{}` when another item of its
   * group was.
   */
  refused?: { counter?: string; tatUs?: number };
}

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
> & {
  /** The RFC 5233 detail of the plus-address the mail came to (headers.detail), or null. */
  detail: string | null;
};

export interface LeaseRef {
  id: string;
  lease_id: string;
}
export type LeaseOutcome = 'ok' | 'not_found' | 'forbidden' | 'lease_conflict';

export interface Claimed {
  rows: PulledRow[];
  acked: Map<string, LeaseOutcome>;
}
