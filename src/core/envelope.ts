// The ADMP envelope schema: what an HTTP send carries and what the JSON body of an
// agent mail holds. Every road validates against it; its TypeScript type is derived
// from it (no hand-written twin).
import { Type, type Static } from '@sinclair/typebox';

export const AgentType = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$',
  description: 'ADMP message type, e.g. task.request',
});

/** The ADMP envelope: what an HTTP send carries, and the JSON body of an agent mail. */
export const Envelope = Type.Object(
  {
    to: Type.String({ minLength: 1, maxLength: 320 }),
    type: AgentType,
    subject: Type.Optional(Type.String({ maxLength: 998 })), // RFC 5322 §2.1.1 line limit
    body: Type.Unknown(),
    correlation_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    ttl_sec: Type.Optional(Type.Integer({ minimum: 1, maximum: 31536000 })),
  },
  { additionalProperties: false },
);
export type Envelope = Static<typeof Envelope>;
