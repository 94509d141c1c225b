// The API's types, taken from the generated OpenAPI types (openapi.ts, written by
// `npm run openapi` from docs/openapi.json): no hand-written twins of the schemas.
import type { components, paths } from './openapi.js';

type JsonBody<T> = T extends { content: { 'application/json': infer B } } ? B : never;
type RequestOf<P extends keyof paths, M extends 'get' | 'post'> = JsonBody<
  NonNullable<(paths[P][M] & { requestBody?: unknown })['requestBody']>
>;
type ResponseOf<P extends keyof paths, M extends 'get' | 'post', S extends number> = JsonBody<
  (paths[P][M] & { responses: Record<S, unknown> })['responses'][S]
>;

/** What `send()` takes: the ADMP envelope. */
export type SendRequest = RequestOf<'/v1/messages', 'post'>;
/** 201 stored, or 200 with `duplicate: true` for an idempotent replay. */
export type SendResult = ResponseOf<'/v1/messages', 'post', 201>;
export type PullRequest = RequestOf<'/v1/inbox/pull', 'post'>;
export type PullResponse = ResponseOf<'/v1/inbox/pull', 'post', 200>;
/** A message handed out with a lease: ack it, extend it or release it by `id` + `lease_id`. */
export type PulledMessage = PullResponse['messages'][number];
export type AckResult = ResponseOf<'/v1/messages/ack', 'post', 200>['results'][number];
export type LeaseRef = RequestOf<'/v1/messages/ack', 'post'>['items'][number];
export type NackResult = ResponseOf<'/v1/messages/{id}/nack', 'post', 200>;
export type ReplyRequest = RequestOf<'/v1/messages/{id}/reply', 'post'>;
export type MessageStatus = ResponseOf<'/v1/messages/{id}', 'get', 200>;
export type InboxDepth = ResponseOf<'/v1/inbox', 'get', 200>;
export type DeadLetter = ResponseOf<'/v1/dead', 'get', 200>['messages'][number];
export type RedriveResult = ResponseOf<'/v1/dead/redrive', 'post', 200>;
/** A webhook endpoint to register: your messages are then POSTed to it, signed (Standard Webhooks). */
export type WebhookRequest = RequestOf<'/v1/webhooks', 'post'>;
/** The endpoint with its signing secret (`whsec_…`), shown this once. */
export type WebhookCreated = ResponseOf<'/v1/webhooks', 'post', 201>;
export type WebhookEndpoint = ResponseOf<'/v1/webhooks', 'get', 200>['endpoints'][number];

type Schemas = components['schemas'];
/** Every error code the API can answer (the server's ERROR_KINDS table). */
export type ErrorCode = {
  [K in keyof Schemas]: K extends `AdmpError${number}` ? Schemas[K]['error']['code'] : never;
}[keyof Schemas];
