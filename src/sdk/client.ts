// The ADMP agent client: every call of the agent API, and the consumer loop.
import { authorizer, type Credentials } from './auth.js';
import { createTransport, type Call, type RetryOptions } from './transport.js';
import { startConsumer, type ConsumeOptions, type Consumer, type Handler } from './consumer.js';
import type {
  AckResult,
  DeadLetter,
  InboxDepth,
  LeaseRef,
  MessageStatus,
  NackResult,
  PullRequest,
  PullResponse,
  RedriveResult,
  ReplyRequest,
  SendRequest,
  SendResult,
  WebhookCreated,
  WebhookEndpoint,
  WebhookRequest,
} from './types.js';

export interface ClientOptions {
  /** The API's base URL, e.g. http://127.0.0.1:8080 */
  readonly baseUrl: string;
  readonly credentials: Credentials;
  readonly retry?: RetryOptions;
  /** Per-attempt timeout in ms (a long poll adds its wait); default 30 000. */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

export interface SendOptions {
  /** Default: a fresh UUID per call, reused by every retry of that call. */
  readonly idempotencyKey?: string;
  readonly signal?: AbortSignal;
}

const id = (s: string) => encodeURIComponent(s);

export class AdmpClient {
  readonly #call: Call;

  constructor(o: ClientOptions) {
    this.#call = createTransport({
      baseUrl: o.baseUrl,
      authorize: authorizer(o.credentials),
      retry: o.retry,
      timeoutMs: o.timeoutMs,
      fetch: o.fetch,
    });
  }

  /** Sends a message. Retries carry the same idempotency key, so a retried send is stored once. */
  send(message: SendRequest, o: SendOptions = {}): Promise<SendResult> {
    return this.#call('POST', '/v1/messages', {
      body: message,
      headers: { 'idempotency-key': o.idempotencyKey ?? crypto.randomUUID() },
      signal: o.signal,
    });
  }

  /** Claims up to `max` messages with a lease; `wait` long-polls an empty inbox; `ack` acks the previous batch in the same call. */
  pull(request: Partial<PullRequest> = {}, o: { signal?: AbortSignal } = {}): Promise<PullResponse> {
    return this.#call('POST', '/v1/inbox/pull', {
      body: request,
      extraTimeMs: (request.wait ?? 0) * 1000,
      signal: o.signal,
    });
  }

  /** Acks one message; throws `lease_conflict` when the lease is no longer current. */
  ack(messageId: string, leaseId: string): Promise<{ id: string; status: 'acked' }> {
    return this.#call('POST', `/v1/messages/${id(messageId)}/ack`, { body: { lease_id: leaseId } });
  }

  /** Acks a batch; each item says `acked` or why not. */
  async ackMany(items: readonly LeaseRef[]): Promise<AckResult[]> {
    return (await this.#call<{ results: AckResult[] }>('POST', '/v1/messages/ack', { body: { items } })).results;
  }

  /** Extends a lease by `sec` seconds from now (a heartbeat). */
  extend(messageId: string, leaseId: string, sec: number): Promise<NackResult> {
    return this.#call('POST', `/v1/messages/${id(messageId)}/nack`, { body: { lease_id: leaseId, extend_sec: sec } });
  }

  /** Gives a message back (nack), visible again after `delaySec`; past the attempt limit it goes dead. */
  release(messageId: string, leaseId: string, delaySec = 0): Promise<NackResult> {
    return this.#call('POST', `/v1/messages/${id(messageId)}/nack`, {
      body: { lease_id: leaseId, delay_sec: delaySec },
    });
  }

  /** Replies to the sender of a message; with `lease_id` the original is acked in the same transaction. */
  reply(messageId: string, reply: ReplyRequest, o: SendOptions = {}): Promise<SendResult> {
    return this.#call('POST', `/v1/messages/${id(messageId)}/reply`, {
      body: reply,
      headers: { 'idempotency-key': o.idempotencyKey ?? crypto.randomUUID() },
      signal: o.signal,
    });
  }

  /** State and history of a message you sent or received. */
  status(messageId: string): Promise<MessageStatus> {
    return this.#call('GET', `/v1/messages/${id(messageId)}`);
  }

  /** Your inbox's message counts by state. */
  inbox(): Promise<InboxDepth> {
    return this.#call('GET', '/v1/inbox');
  }

  /** Dead letters, newest first; page with `before` (the last one's created_at). */
  async deadLetters(o: { limit?: number; before?: string } = {}): Promise<DeadLetter[]> {
    const q = new URLSearchParams();
    if (o.limit !== undefined) q.set('limit', String(o.limit));
    if (o.before !== undefined) q.set('before', o.before);
    const qs = q.size > 0 ? `?${q}` : '';
    return (await this.#call<{ messages: DeadLetter[] }>('GET', `/v1/dead${qs}`)).messages;
  }

  /** Puts dead letters back in the inbox with a fresh attempt count: the given ids, or `'all'`. */
  redrive(ids: readonly string[] | 'all'): Promise<RedriveResult> {
    return this.#call('POST', '/v1/dead/redrive', { body: ids === 'all' ? { all: true } : { ids } });
  }

  /** Registers a webhook endpoint: your messages are pushed to it instead of waiting for pulls. The answer carries the signing secret once. */
  addWebhook(endpoint: WebhookRequest): Promise<WebhookCreated> {
    return this.#call('POST', '/v1/webhooks', { body: endpoint });
  }

  /** Your webhook endpoints, with why any is disabled. */
  async webhooks(): Promise<WebhookEndpoint[]> {
    return (await this.#call<{ endpoints: WebhookEndpoint[] }>('GET', '/v1/webhooks')).endpoints;
  }

  /** Removes a webhook endpoint. */
  async removeWebhook(endpointId: string): Promise<void> {
    await this.#call('DELETE', `/v1/webhooks/${id(endpointId)}`);
  }

  /** Delivers to an endpoint again after a 410 answer or a refused address disabled it. */
  enableWebhook(endpointId: string): Promise<WebhookEndpoint> {
    return this.#call('POST', `/v1/webhooks/${id(endpointId)}/enable`);
  }

  /** Runs `handler` on every message of the inbox until `stop()`; see ConsumeOptions. */
  consume(handler: Handler, o: ConsumeOptions = {}): Consumer {
    return startConsumer(this, handler, o);
  }
}
