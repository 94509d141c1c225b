// One HTTP call to the API, with authentication and retries. Retried: network
// errors (no answer), 429 and 503 — answers that mean "nothing was done, try later"
// (a 503 is a fault of the server, whose transaction did not commit). Each retry
// waits an exponential backoff with full jitter, or what Retry-After says. Every
// call of the API is safe to repeat: sends and replies carry an idempotency key,
// acks and extends name a lease, a lost pull's leases run out and the messages return.
import { AdmpApiError } from './errors.js';
import type { Authorizer } from './auth.js';
import type { ErrorCode } from './types.js';

export interface RetryOptions {
  /** Attempts after the first; default 6. */
  readonly retries?: number;
  /** First backoff ceiling in ms; default 100. */
  readonly baseDelayMs?: number;
  /** Largest wait in ms, also the cap on Retry-After; default 20 000. */
  readonly maxDelayMs?: number;
}

export interface TransportOptions {
  readonly baseUrl: string;
  readonly authorize: Authorizer;
  readonly retry?: RetryOptions;
  /** Per-attempt timeout in ms, added to a long poll's wait; default 30 000. */
  readonly timeoutMs?: number;
  /** A fetch implementation; default the global one. */
  readonly fetch?: typeof fetch;
}

export interface CallOptions {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** Extra time this call may take on the server (a long poll's wait), in ms. */
  readonly extraTimeMs?: number;
  readonly signal?: AbortSignal;
}

export type Call = <T>(method: 'GET' | 'POST' | 'DELETE', path: string, o?: CallOptions) => Promise<T>;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((ok, fail) => {
    if (signal?.aborted) return fail(signal.reason);
    const t = setTimeout(ok, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        fail(signal.reason);
      },
      { once: true },
    );
  });

/** Retry-After (RFC 9110 §10.2.3): delay seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Full jitter (uniform in [0, min(max, base·2^attempt)]): retrying clients spread out instead of returning together. */
export const backoffMs = (attempt: number, base: number, max: number, random = Math.random): number =>
  random() * Math.min(max, base * 2 ** attempt);

const RETRYABLE_STATUS = new Set([429, 503]);

/**
 * One attempt's signal: aborted after `ms` or with the caller's `signal`; `clear` ends both
 * links when the attempt is over. Not AbortSignal.timeout + AbortSignal.any: the timeout's
 * timer lives its full length after the call, and a combined signal stays registered on
 * the caller's long-lived one (a consumer's) until that aborts, one per call (Node
 * issue #55351), which a busy consumer pays for in memory and in garbage collection.
 */
function callDeadline(ms: number, signal?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
  const follow = () => ac.abort(signal!.reason);
  if (signal?.aborted) ac.abort(signal.reason);
  else signal?.addEventListener('abort', follow, { once: true });
  return {
    signal: ac.signal,
    clear() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', follow);
    },
  };
}

export function createTransport(o: TransportOptions): Call {
  const base = o.baseUrl.replace(/\/+$/, '');
  const retries = o.retry?.retries ?? 6;
  const baseDelay = o.retry?.baseDelayMs ?? 100;
  const maxDelay = o.retry?.maxDelayMs ?? 20_000;
  const timeout = o.timeoutMs ?? 30_000;
  const doFetch = o.fetch ?? globalThis.fetch.bind(globalThis);

  return async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, c: CallOptions = {}): Promise<T> {
    const body: Uint8Array<ArrayBuffer> =
      c.body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(c.body));
    for (let attempt = 0; ; attempt++) {
      let failure: AdmpApiError;
      let wait: number | undefined;
      const deadline = callDeadline(timeout + (c.extraTimeMs ?? 0), c.signal);
      try {
        const res = await doFetch(base + path, {
          method,
          headers: {
            ...(await o.authorize(method, path, body)),
            ...(c.body === undefined ? {} : { 'content-type': 'application/json' }),
            ...c.headers,
          },
          ...(c.body === undefined ? {} : { body }),
          signal: deadline.signal,
        });
        const text = await res.text();
        const json: unknown = text === '' ? undefined : JSON.parse(text);
        if (res.ok) return json as T;
        const err = (json as { error?: { code: ErrorCode; message: string; details?: Record<string, unknown> } })
          ?.error;
        failure = new AdmpApiError(
          err?.code ?? 'internal',
          err?.message ?? `HTTP ${res.status}`,
          res.status,
          err?.details,
        );
        if (!RETRYABLE_STATUS.has(res.status)) throw failure;
        wait = retryAfterMs(res.headers.get('retry-after'));
      } catch (e) {
        if (e instanceof AdmpApiError && !RETRYABLE_STATUS.has(e.status)) throw e;
        if (c.signal?.aborted) throw c.signal.reason;
        failure =
          e instanceof AdmpApiError
            ? e
            : new AdmpApiError('network', `${method} ${path}: ${(e as Error).message}`, 0, undefined, { cause: e });
      } finally {
        deadline.clear();
      }
      if (attempt >= retries) throw failure;
      await sleep(Math.min(maxDelay, wait ?? backoffMs(attempt, baseDelay, maxDelay)), c.signal);
    }
  };
}
