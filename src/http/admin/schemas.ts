// Request and response schemas of the admin API (/admin/v1). The routes and the
// console (type-only imports) both derive their types from these.
import { Type, type Static, type TLiteral } from '@sinclair/typebox';
import { MESSAGE_STATUSES } from '../../core/status.js';
import { DEFAULT_OVERLAP_SEC, MIN_OVERLAP_SEC } from '../../admin/admin.js';
import { OPERATIONS_LIMITS } from '../../admin/operations.js';
import { RateQuotaSchema } from '../../core/policy.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });
const Uuid = Type.String({ format: 'uuid' });
// A union of literals typed as the tuple it is (a plain .map() would type as an array, which the type provider reads as never).
type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };
export const Status = Type.Union(
  MESSAGE_STATUSES.map((s) => Type.Literal(s)) as unknown as Literals<typeof MESSAGE_STATUSES>,
);
const Channel = Type.Union([Type.Literal('http'), Type.Literal('smtp')]);
const AgentId = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' });
// An agent id as stored: the local part, or a tenant's agent's whole address.
const AgentKey = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}(@[a-z0-9.-]{3,253})?$' });
const Address = Type.String({ minLength: 3, maxLength: 320 });

export const Whoami = Type.Object({ id: Type.Integer(), name: Type.String(), read_only: Type.Boolean() });
export type Whoami = Static<typeof Whoami>;

export const SearchQuery = Type.Object(
  {
    agent: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'recipient inbox (agent id)' })),
    status: Type.Optional(Status),
    channel: Type.Optional(Channel),
    sender: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'sender address, exact' })),
    correlation_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    after: Type.Optional(Type.String({ format: 'date-time', description: 'created at or after' })),
    before: Type.Optional(Type.String({ format: 'date-time', description: 'created before' })),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' })),
    limit: Type.Integer({ minimum: 1, maximum: OPERATIONS_LIMITS.searchPage, default: 50 }),
  },
  { additionalProperties: false },
);
export type SearchQuery = Static<typeof SearchQuery>;

export const MessageSummary = Type.Object({
  id: Uuid,
  to_agent_id: Type.String(),
  channel: Channel,
  from_agent: Type.String(),
  subject: Nullable(Type.String()),
  type: Type.String(),
  correlation_id: Nullable(Type.String()),
  status: Status,
  attempts: Type.Integer(),
  created_at: DateTime,
});
export type MessageSummary = Static<typeof MessageSummary>;

export const MessagePage = Type.Object({
  messages: Type.Array(MessageSummary),
  next_cursor: Nullable(Type.String()),
});
export type MessagePage = Static<typeof MessagePage>;

export const MessageDetail = Type.Object({
  ...MessageSummary.properties,
  body: Type.Unknown(),
  headers: Type.Record(Type.String(), Type.Unknown()),
  idempotency_key: Nullable(Type.String()),
  lease_until: Nullable(DateTime),
  expires_at: DateTime,
  delivered_at: Nullable(DateTime),
  acked_at: Nullable(DateTime),
  reply: Nullable(Type.String()),
  in_reply_to: Nullable(Type.String()),
  mail_message_id: Nullable(Type.String()),
  delivery_log: Type.Array(Type.Record(Type.String(), Type.Unknown())),
  auth: Type.Unknown({ description: 'verdicts recorded at ingress: DKIM, agent signature, policy rule' }),
});
export type MessageDetail = Static<typeof MessageDetail>;

export const MessageParams = Type.Object({ id: Uuid });

export const MessageRefs = Type.Object(
  {
    messages: Type.Array(Type.Object({ id: Uuid, agent: AgentKey }, { additionalProperties: false }), {
      minItems: 1,
      maxItems: OPERATIONS_LIMITS.messageRefs,
    }),
  },
  { additionalProperties: false },
);
export type MessageRefs = Static<typeof MessageRefs>;
export const Changed = Type.Object({ ids: Type.Array(Uuid) });

export const StatusCount = Type.Object({
  status: Status,
  count: Type.Integer(),
  oldest_at: Nullable(DateTime),
});
export const Overview = Type.Object({
  at: DateTime,
  depth: Type.Array(StatusCount),
  /** Messages created per minute over the last hour, oldest first. */
  throughput: Type.Array(Type.Object({ minute: DateTime, count: Type.Integer() })),
});
export type Overview = Static<typeof Overview>;

export const Refusal = Type.Object({
  at: DateTime,
  road: Type.String(),
  sender: Nullable(Type.String()),
  recipient: Nullable(Type.String()),
  code: Type.String(),
  reason: Type.String(),
});
export type Refusal = Static<typeof Refusal>;

export const OutboundFailure = Type.Object({
  id: Uuid,
  to: Type.String(),
  from_agent: Type.String(),
  status: Status,
  created_at: DateTime,
  reason: Nullable(Type.String()),
});
export type OutboundFailure = Static<typeof OutboundFailure>;

export const Agent = Type.Object({
  id: Type.String(),
  address: Type.String(),
  domain: Type.String(),
  status: Type.String(),
  created_at: DateTime,
});
export type Agent = Static<typeof Agent>;
export const NewAgent = Type.Object(
  { id: AgentId, domain: Type.Optional(Type.String({ minLength: 3, maxLength: 253 })) },
  { additionalProperties: false },
);
export const AgentCredentials = Type.Object({
  id: Type.String(),
  address: Type.String(),
  token: Type.Optional(Type.String()),
  hmac_secret: Type.Optional(Type.String()),
});
export type AgentCredentials = Static<typeof AgentCredentials>;
export const AgentParams = Type.Object({ id: AgentKey });
export const Webhook = Type.Object({
  id: Type.String(),
  agent_id: Type.String(),
  url: Type.String(),
  types: Nullable(Type.Array(Type.String())),
  public_key: Nullable(Type.String()),
  disabled_at: Nullable(DateTime),
  disabled_reason: Nullable(Type.String()),
  created_at: DateTime,
});
export type Webhook = Static<typeof Webhook>;
export const WebhookParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
export const WebhookRemoved = Type.Object({ removed: Type.String() });
export const RotateBody = Type.Object({ hmac: Type.Boolean({ default: false }) }, { additionalProperties: false });

export const Tenant = Type.Object({
  domain: Type.String({ description: 'the subdomain under a wildcard of ADMP_DOMAINS' }),
  created_at: DateTime,
  agents: Type.Integer(),
});
export type Tenant = Static<typeof Tenant>;
export const NewTenant = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 253,
      description: 'one label (under the first wildcard of ADMP_DOMAINS) or the whole subdomain',
    }),
  },
  { additionalProperties: false },
);
export const TenantParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) });
export const TenantRemoved = Type.Object({ removed: Type.String() });

export const AddressToken = Type.Object({
  address: Type.String({ description: '`t-<token>@<domain>`: reaches the agent without naming it' }),
  agent: Type.String({ description: "the agent's own address" }),
  created_at: DateTime,
  revoked_at: Nullable(DateTime),
});
export type AddressToken = Static<typeof AddressToken>;
export const AddressQuery = Type.Object(
  { agent: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })) },
  { additionalProperties: false },
);
export const NewAddressToken = Type.Object(
  { agent: Type.String({ minLength: 1, maxLength: 320, description: 'agent id or address' }) },
  { additionalProperties: false },
);
export const RevokeAddress = Type.Object({ address: Address }, { additionalProperties: false });

const Glob = Type.String({ minLength: 1, maxLength: 320 });
export const NewRule = Type.Object(
  {
    from: Glob,
    to: Glob,
    types: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 32, default: [] }),
    subject: Type.Optional(Type.String({ maxLength: 998 })),
    max_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
    action: Type.Union([Type.Literal('allow'), Type.Literal('deny'), Type.Literal('limit')]),
    /** Required on a limit rule, refused on the others (docs/policy.md). */
    quota: Type.Optional(RateQuotaSchema),
  },
  { additionalProperties: false },
);
export type NewRule = Static<typeof NewRule>;
export const Rule = Type.Object({
  id: Type.Integer(),
  from_glob: Type.String(),
  to_glob: Type.String(),
  types: Type.Array(Type.String()),
  subject: Nullable(Type.String()),
  max_bytes: Nullable(Type.Integer()),
  action: Type.String(),
  quota_per: Nullable(Type.String()),
  quota_limit: Nullable(Type.Integer()),
  quota_window_sec: Nullable(Type.Integer()),
  quota_burst: Nullable(Type.Integer()),
});
export type Rule = Static<typeof Rule>;
export const RuleParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
export const Removed = Type.Object({ removed: Type.Integer() });

export const DryRun = Type.Object(
  {
    from: Address,
    to: Address,
    type: Type.String({ minLength: 1, maxLength: 128 }),
    subject: Type.Optional(Type.String({ maxLength: 998 })),
    bytes: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
);
export type DryRun = Static<typeof DryRun>;
export const Decision = Type.Object({
  allow: Type.Boolean(),
  rule: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});
export type Decision = Static<typeof Decision>;

export const Key = Type.Object({
  domain: Type.String(),
  kid: Type.String(),
  agent: Type.String(),
  source: Type.Union([Type.Literal('local'), Type.Literal('pinned')]),
  public_key: Type.String({ description: 'raw 32-byte Ed25519 public key, base64' }),
  not_before: DateTime,
  not_after: Nullable(DateTime),
  revoked_at: Nullable(DateTime),
});
export type Key = Static<typeof Key>;
export const PinKey = Type.Object(
  {
    agent: Address,
    kid: Type.String({ pattern: '^[A-Za-z0-9._-]{1,128}$' }),
    public_key: Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$', description: 'raw 32-byte Ed25519 public key, base64' }),
    not_after: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);
export const RevokeKey = Type.Union([
  Type.Object(
    { domain: Type.String({ minLength: 3, maxLength: 253 }), kid: Type.String({ minLength: 1, maxLength: 128 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      agent: Type.String({ minLength: 1, maxLength: 320 }),
      kid: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    },
    { additionalProperties: false },
  ),
]);
export const Revoked = Type.Object({ revoked: Type.Array(Type.String()) });
export const RotateKey = Type.Object(
  {
    agent: Type.String({ minLength: 1, maxLength: 320, description: 'one of our agents: local part or address' }),
    overlap_sec: Type.Integer({
      minimum: MIN_OVERLAP_SEC,
      maximum: 90 * 86_400,
      default: DEFAULT_OVERLAP_SEC,
      description: "how long the agent's other keys keep verifying",
    }),
  },
  { additionalProperties: false },
);
export const RotatedKey = Type.Object({
  key: Key,
  retiring: Type.Array(Type.String(), { description: 'key ids that stop verifying at retiring_at' }),
  retiring_at: Nullable(DateTime),
  dns: Type.Array(Type.Object({ name: Type.String(), text: Type.String() }), {
    description: 'the TXT record to publish for the new key',
  }),
});
export type RotatedKey = Static<typeof RotatedKey>;
