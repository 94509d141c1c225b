// Request and response schemas of the agent API. Route types are derived from
// these (TypeBox type provider); there are no hand-written twins.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { AgentType, Envelope } from '../core/envelope.js';
import { MAILBOX_LIMITS } from '../mailbox/limits.js';

export { Envelope };

export const Uuid = Type.String({ format: 'uuid' });

/** An enum of strings as one JSON Schema `enum` (a TypeBox union of literals reads badly in the OpenAPI document). */
export const StringEnum = <T extends string>(values: readonly T[], options: { description?: string } = {}) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
export const ReplyBody = Type.Object(
  {
    lease_id: Type.Optional(Uuid),
    type: AgentType,
    subject: Type.Optional(Type.String({ maxLength: 998 })),
    body: Type.Unknown(),
    ttl_sec: Type.Optional(Type.Integer({ minimum: 1, maximum: 31536000 })),
  },
  { additionalProperties: false },
);

export const IdParams = Type.Object({ id: Uuid });
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: MAILBOX_LIMITS.idempotencyKeyChars })),
});

/** Leases to ack: a batch ack, or the acks a pull carries for the previous batch. */
const LeaseRefs = Type.Array(Type.Object({ id: Uuid, lease_id: Uuid }, { additionalProperties: false }), {
  minItems: 1,
  maxItems: MAILBOX_LIMITS.ackBatch,
});

export const PullBody = Type.Object(
  {
    max: Type.Integer({ minimum: 1, maximum: MAILBOX_LIMITS.pullMax, default: 10 }),
    visibility_timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: MAILBOX_LIMITS.leaseSec })),
    wait: Type.Integer({ minimum: 0, maximum: MAILBOX_LIMITS.waitSec, default: 0 }),
    ack: Type.Optional(LeaseRefs),
  },
  { additionalProperties: false },
);

export const LeaseBody = Type.Object({ lease_id: Uuid }, { additionalProperties: false });
export const NackBody = Type.Object(
  {
    lease_id: Uuid,
    extend_sec: Type.Optional(Type.Integer({ minimum: 1, maximum: MAILBOX_LIMITS.leaseSec })),
    delay_sec: Type.Optional(Type.Integer({ minimum: 0, maximum: MAILBOX_LIMITS.releaseDelaySec })),
  },
  { additionalProperties: false },
);
export const BatchAckBody = Type.Object({ items: LeaseRefs }, { additionalProperties: false });

// Query values arrive as strings and the validator does not coerce types (a JSON
// body's "1" must stay a string), so a number in a query is a pattern.
export const DeadQuery = Type.Object({
  limit: Type.String({ pattern: '^(100|[1-9][0-9]?)$', default: '50', description: '1 to 100' }),
  before: Type.Optional(Type.String({ format: 'date-time' })),
});
export const RedriveBody = Type.Object(
  {
    ids: Type.Optional(Type.Array(Uuid, { minItems: 1, maxItems: MAILBOX_LIMITS.redriveIds })),
    all: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** Who a message is from and to, by which road, and what it is: shown by a pull and by status. */
const Addressing = {
  from: Type.String(),
  to: Type.String(),
  detail: Nullable(
    Type.String({ description: 'The RFC 5233 detail of the plus-address the mail came to (`bob+detail@…`), or null' }),
  ),
  channel: Type.Union([Type.Literal('http'), Type.Literal('smtp')]),
  type: Type.String(),
  subject: Nullable(Type.String()),
};

/** A pulled message; also the response serializer (fast-json-stringify) of the pull route. */
export const PulledMessage = Type.Object({
  id: Uuid,
  lease_id: Uuid,
  lease_until: Type.String({ format: 'date-time' }),
  ...Addressing,
  body: Type.Unknown(),
  correlation_id: Nullable(Type.String()),
  in_reply_to: Nullable(Uuid),
  attempts: Type.Integer(),
  created_at: Type.String({ format: 'date-time' }),
  auth: Type.Unknown(),
});
/** One ack of a batch: `acked`, or why not (`not_found`, `forbidden`, `lease_conflict`). */
const AckResults = Type.Array(
  Type.Object({
    id: Uuid,
    outcome: Type.Union([
      Type.Literal('acked'),
      Type.Literal('not_found'),
      Type.Literal('forbidden'),
      Type.Literal('lease_conflict'),
    ]),
  }),
);
export const PullResponse = Type.Object({ acked: Type.Optional(AckResults), messages: Type.Array(PulledMessage) });
export const BatchAckResponse = Type.Object({ results: AckResults });

// ---- responses ------------------------------------------------------------------

const STATUSES = ['queued', 'sent', 'delivered', 'leased', 'acked', 'failed', 'dead'] as const;
const Status = StringEnum(STATUSES, { description: 'Lifecycle state of a message' });
const Time = Type.String({ format: 'date-time' });

/** What a send or a reply answers: 201 stored, 200 an idempotent replay (`duplicate`). */
export const SendResult = Type.Object({
  id: Uuid,
  status: Status,
  duplicate: Type.Optional(Type.Literal(true)),
});

export const DeliveryLogEntry = Type.Object(
  { at: Type.String(), event: Type.String() },
  { additionalProperties: true, description: 'One event; further fields depend on the event (reason, reply, sec…)' },
);
export type DeliveryLogEntry = Static<typeof DeliveryLogEntry>;

/** A message's state and history, as its sender or recipient sees it. */
export const MessageStatusView = Type.Object({
  id: Uuid,
  status: Status,
  ...Addressing,
  correlation_id: Nullable(Type.String()),
  in_reply_to: Nullable(Uuid),
  reply: Nullable(Uuid),
  attempts: Type.Integer(),
  created_at: Nullable(Time),
  delivered_at: Nullable(Time),
  acked_at: Nullable(Time),
  expires_at: Nullable(Time),
  lease_until: Nullable(Time),
  delivery_log: Type.Array(Type.Object({ at: Type.String(), event: Type.String() }, { additionalProperties: true }), {
    description: 'Every state change and delivery attempt, oldest first',
  }),
});
export const DeadLetter = Type.Composite([MessageStatusView, Type.Object({ body: Type.Unknown() })]);
export const DeadList = Type.Object({ messages: Type.Array(DeadLetter) });
export const RedriveResponse = Type.Object({ redriven: Type.Array(Uuid) });
export const AckResponse = Type.Object({ id: Uuid, status: Type.Literal('acked') });
export const NackResponse = Type.Object({
  id: Uuid,
  status: Status,
  lease_until: Nullable(Time),
});
export const InboxDepth = Type.Object({
  agent: Type.String(),
  depth: Type.Object(Object.fromEntries(STATUSES.map((s) => [s, Type.Integer({ minimum: 0 })])), {
    description: 'Messages in the inbox by state',
  }),
});

export const WebhookBody = Type.Object(
  {
    url: Type.String({ minLength: 8, maxLength: 2048, description: 'http(s) URL the messages are POSTed to' }),
    secret: Type.Optional(
      Type.String({
        pattern: '^whsec_[A-Za-z0-9+/]+={0,2}$',
        maxLength: 100,
        description: 'HMAC secret (whsec_ + base64 of 24 to 64 bytes); absent: one is made and returned',
      }),
    ),
    ed25519: Type.Optional(
      Type.Boolean({ description: 'Also sign with a new Ed25519 key (v1a); its public key is returned' }),
    ),
    types: Type.Optional(
      Type.Array(AgentType, { minItems: 1, maxItems: 50, description: 'Push only messages of these types' }),
    ),
  },
  { additionalProperties: false },
);
export const WebhookEndpoint = Type.Object({
  id: Uuid,
  url: Type.String(),
  types: Type.Union([Type.Array(Type.String()), Type.Null()]),
  public_key: Type.Union([
    Type.String({ description: 'whpk_ + base64 Ed25519 public key (verifies v1a)' }),
    Type.Null(),
  ]),
  disabled_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  disabled_reason: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
});
export const WebhookCreated = Type.Composite([
  WebhookEndpoint,
  Type.Object({ secret: Type.String({ description: 'whsec_…: the HMAC secret, shown this once' }) }),
]);
export const WebhookList = Type.Object({ endpoints: Type.Array(WebhookEndpoint) });
export const WebhookRemoved = Type.Object({ removed: Uuid });
