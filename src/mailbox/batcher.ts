// The one enqueue path. Concurrent callers are gathered into one enqueue_message
// call (one statement, one commit): under load this turns N fsyncs into one, and
// an idle caller is not delayed, because a batch leaves as soon as a connection is
// free. Every caller is answered only after its own row is committed. The rate quotas
// are counted in the same statement (only for the rows stored new, so a retry spends
// none), not in a round trip of their own before it.
import type pg from 'pg';
import { enqueueRows, notifyEnqueued, type BatchQuotas, type QuotaCounter } from '../db/enqueue.js';
import type { EnqueueResult, NewMessage } from '../db/message-row.js';

export type { EnqueueResult, NewMessage, QuotaCounter };
import { observeEnqueue, since, type Metrics } from '../metrics.js';
import { withSpan } from '../tracing.js';
import type { QuotaLeases } from './quota-leases.js';

/** One caller's rows: stored together in one statement, all or none. */
interface Pending {
  items: readonly NewMessage[];
  /** Per item, the rate quota counters it is counted by. */
  counters: readonly (readonly QuotaCounter[] | undefined)[] | undefined;
  /** An item over a quota refuses the caller's other items too. */
  atomic: boolean;
  at: number;
  resolve: (r: EnqueueResult[]) => void;
  reject: (e: unknown) => void;
}

export interface EnqueuerOptions {
  /**
   * How long a batch may wait to fill up before it leaves (0: it leaves as soon as a
   * connection is free). For callers that are throughput-bound rather than
   * latency-bound (mail ingest): more rows per commit, less PostgreSQL CPU per row.
   */
  fillWaitMs?: number;
  /** A waiting batch leaves at once when this many rows are queued. */
  fillRows?: number;
  metrics?: Metrics;
  /** Microseconds since the epoch, the quotas' clock (tests move time). */
  nowUs?: () => number;
  /** The blocks of units of the quotas with a large burst (this instance's, shared by its enqueuers). */
  leases?: QuotaLeases;
}

export interface EnqueueOptions {
  /** Per item, the rate quota counters it is counted by (src/policy/rate-quotas.ts). */
  counters?: readonly (readonly QuotaCounter[] | undefined)[];
  /**
   * Whether an item over a quota refuses the caller's other items too (default); with
   * false each item is refused alone. Either way a fault stores none of them.
   */
  atomic?: boolean;
}

export interface Enqueuer {
  /** One row, counted by these quota counters; `refused` when one is spent. */
  enqueue(item: NewMessage, counters?: readonly QuotaCounter[]): Promise<EnqueueResult>;
  /** Several rows (one mail to several recipients) in the same commit: all stored or none. */
  enqueueAll(items: readonly NewMessage[], options?: EnqueueOptions): Promise<EnqueueResult[]>;
  /** Waits for batches in flight (shutdown). */
  drain(): Promise<void>;
}

const MAX_BATCH = 200;

export function createEnqueuer(pool: pg.Pool, options: EnqueuerOptions = {}): Enqueuer {
  const fillWaitMs = options.fillWaitMs ?? 0;
  const fillRows = Math.min(options.fillRows ?? 32, MAX_BATCH);
  // One batch in flight while the next fills: rows per commit is what makes this cheap.
  // Measured (bench, 32 connections, wrk): one in flight 8.9–9.6k sends/s at 15.5–16
  // rows per batch; a second batch in flight once 8, 12 or 16 wait, 8.7–10.1k (no gain:
  // smaller batches, each slower). With autocannon: one 7.3k, two 5.9k.
  // Mail ingest (2 workers, 5 KB) with fillWaitMs 3: 2.0–2.1k → 2.2–2.4k msgs/s,
  // 3 → 6.7 rows per commit.
  // Batches do not NOTIFY inside their transaction (PostgreSQL serialises notifying
  // commits); the wake-up follows each commit (createWaker below).
  let queue: Pending[] = [];
  let inFlight = false;
  let fillTimer: NodeJS.Timeout | undefined;
  let draining = false;
  const idle: (() => void)[] = [];

  const waker = createWaker(pool);
  const nowUs = options.nowUs ?? (() => Date.now() * 1000);

  /** The batch's quotas, or undefined when none of its callers has any. */
  function quotasOf(batch: readonly Pending[]): BatchQuotas | undefined {
    if (!batch.some((p) => p.counters)) return undefined;
    const counters: (readonly QuotaCounter[] | undefined)[] = [];
    const groups: number[] = [];
    let group = 0;
    for (const p of batch) {
      p.items.forEach((_, i) => {
        counters.push(p.counters?.[i]);
        groups.push(p.atomic ? group : group++);
      });
      if (p.atomic) group++;
    }
    return { counters, groups, nowUs: nowUs() };
  }

  async function store(batch: readonly Pending[]): Promise<EnqueueResult[]> {
    const items = batch.length === 1 ? batch[0]!.items : batch.flatMap((p) => p.items);
    const results = await enqueueRows(pool, items, { notify: false, quotas: quotasOf(batch) });
    waker.wake(items.filter((_, i) => !results[i]!.duplicate && !results[i]!.refused));
    return results;
  }

  async function run(batch: Pending[]): Promise<void> {
    try {
      const results = await store(batch);
      let i = 0;
      for (const p of batch) {
        p.resolve(results.slice(i, i + p.items.length));
        i += p.items.length;
      }
    } catch (err) {
      if (batch.length === 1) batch[0]!.reject(err);
      // One bad caller must not fail its neighbours: retry each alone to isolate it.
      else await Promise.all(batch.map((p) => store([p]).then(p.resolve, p.reject)));
    }
  }

  /** Callers from the head of the queue, up to MAX_BATCH rows (a caller's rows are never split). */
  function takeBatch(): Pending[] {
    let rows = 0;
    let n = 0;
    while (n < queue.length && (n === 0 || rows + queue[n]!.items.length <= MAX_BATCH))
      rows += queue[n++]!.items.length;
    const batch = queue.slice(0, n);
    queue = queue.slice(n);
    return batch;
  }

  /** Milliseconds the queued batch may still wait to fill up (0: it leaves now). */
  function fillWait(): number {
    if (fillWaitMs === 0 || draining || queue.length >= fillRows) return 0;
    return Math.max(0, queue[0]!.at + fillWaitMs - performance.now());
  }

  function pump(): void {
    if (inFlight || queue.length === 0) return;
    const wait = fillWait();
    if (wait > 0) {
      fillTimer ??= setTimeout(() => {
        fillTimer = undefined;
        pump();
      }, Math.ceil(wait));
      return;
    }
    clearTimeout(fillTimer);
    fillTimer = undefined;
    const batch = takeBatch();
    inFlight = true;
    void run(batch).finally(() => {
      inFlight = false;
      if (queue.length === 0) idle.splice(0).forEach((f) => f());
      pump();
    });
  }

  /**
   * The quotas counted by blocks take their units here, before the batch; an item not
   * stored new gives its units back.
   */
  async function enqueueAll(items: readonly NewMessage[], opts: EnqueueOptions = {}): Promise<EnqueueResult[]> {
    const atomic = opts.atomic ?? true;
    const leases = options.leases;
    if (!leases || !opts.counters || items.length === 0) return queued(items, opts.counters, atomic);
    const admitted = await leases.admit(opts.counters);
    // After a fault the units stay spent: the commit may have happened unseen.
    const results = await queued(items, admitted.counters, atomic);
    admitted.settle(results);
    return results;
  }

  function queued(
    items: readonly NewMessage[],
    counters: EnqueueOptions['counters'],
    atomic: boolean,
  ): Promise<EnqueueResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    const started = performance.now();
    return withSpan('admp.enqueue', { 'admp.channel': items[0]!.channel, 'admp.rows': items.length }, async (span) => {
      const rs = await new Promise<EnqueueResult[]>((resolve, reject) => {
        queue.push({
          items,
          counters,
          atomic,
          at: performance.now(),
          resolve,
          reject,
        });
        pump();
      });
      // Built only for a span that records (with no exporter configured, none does).
      if (span.isRecording())
        span.setAttributes({
          'admp.message_id': rs.map((r) => r.id).join(','),
          'admp.duplicate': rs.every((r) => r.duplicate),
        });
      if (options.metrics)
        rs.forEach((r, i) => {
          if (!r.refused) observeEnqueue(options.metrics!, items[i]!.channel, r.duplicate, since(started));
        });
      return rs;
    });
  }

  return {
    enqueue: async (item, counters) => (await enqueueAll([item], counters ? { counters: [counters] } : {}))[0]!,
    enqueueAll,
    drain() {
      draining = true;
      pump();
      return !inFlight && queue.length === 0 ? Promise.resolve() : new Promise((ok) => idle.push(ok));
    },
  };
}

/**
 * Sends the wake-ups for committed messages, one notifying transaction at a time:
 * inboxes that get mail while one is in flight are gathered into the next. Every
 * NOTIFY costs each listening backend a wake-up, so under load this keeps their
 * number near one per commit interval, not one per batch. A failed wake-up only
 * delays long polls to their timeout.
 */
function createWaker(pool: pg.Pool): { wake(fresh: readonly NewMessage[]): void } {
  let inboxes = new Set<string>();
  let outbound = false;
  let sending = false;
  async function send(): Promise<void> {
    sending = true;
    while (inboxes.size > 0 || outbound) {
      const batch = [...inboxes];
      const ob = outbound;
      inboxes = new Set();
      outbound = false;
      await notifyEnqueued(pool, batch, ob).catch(() => undefined);
    }
    sending = false;
  }
  return {
    wake(fresh) {
      for (const m of fresh) {
        if (m.status === 'delivered') inboxes.add(m.to_agent_id);
        else outbound = true;
      }
      if (!sending) void send();
    },
  };
}
