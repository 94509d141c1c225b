// The consumer loop: long-poll pulls sized to the free handler slots, each batch's
// acks carried on the next pull (one call and one transaction per batch), the lease
// of every running handler extended every third of the visibility timeout (a slow
// handler keeps its message: nobody else gets it while it runs), a failed handler's
// message released with a delay that grows with its attempts, and a stop that lets
// running handlers finish or, past a deadline, releases their messages.
import { AdmpApiError } from './errors.js';
import type { AckResult, LeaseRef, NackResult, PullRequest, PullResponse, PulledMessage } from './types.js';

/** The calls the loop makes (AdmpClient's). */
export interface LeaseCalls {
  pull(request: Partial<PullRequest>, o?: { signal?: AbortSignal }): Promise<PullResponse>;
  ackMany(items: readonly LeaseRef[]): Promise<AckResult[]>;
  extend(messageId: string, leaseId: string, sec: number): Promise<NackResult>;
  release(messageId: string, leaseId: string, delaySec?: number): Promise<NackResult>;
}

export interface HandlerContext {
  /** Aborted when the lease is lost (another consumer may now hold the message) or the consumer stops past its deadline. */
  readonly signal: AbortSignal;
}

/** Resolve to ack the message; throw to release it for a later retry. */
export type Handler = (message: PulledMessage, context: HandlerContext) => unknown;

export interface ConsumeOptions {
  /** Handlers running at once; default 4, at most 100 (the largest pull). */
  readonly concurrency?: number;
  /** Lease length in seconds; default 30. Heartbeats extend it every third of it. */
  readonly visibilityTimeout?: number;
  /** Long-poll wait of an empty inbox in seconds (0–20); default 20. */
  readonly wait?: number;
  /** Delay before a failed message is visible again, from its attempt count; default 2^(attempts−1) s, at most 300. */
  readonly retryDelaySec?: (attempts: number) => number;
  /** Acks of finished handlers wait at most this long for the next pull while one is long-polling; default 200 ms. */
  readonly ackFlushMs?: number;
  /** Told about every failure: handler errors, lost leases, refused acks, failed calls. */
  readonly onError?: (error: unknown, message?: PulledMessage) => void;
}

export interface Consumer {
  /**
   * Stops pulling, lets running handlers finish for up to `timeoutMs` (default the
   * visibility timeout), then releases the messages of handlers still running, and
   * sends the last acks. A pull cut short may have leased messages it never returned:
   * they come back when their lease runs out.
   */
  stop(o?: { timeoutMs?: number }): Promise<void>;
  /** Handlers running now. */
  readonly active: number;
}

interface Task {
  readonly m: PulledMessage;
  /** Made when the handler first reads its signal: most never do. */
  abort?: AbortController;
  /** Why the handler should give up (lease lost, consumer stopped), once it should. */
  reason?: Error;
  /** When its lease is next extended (ms since the epoch). */
  extendAt: number;
  /** The lease is gone (lost, or released by stop): never ack or release it. */
  settled: boolean;
  done?: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

export function startConsumer(client: LeaseCalls, handler: Handler, o: ConsumeOptions): Consumer {
  const concurrency = Math.min(100, Math.max(1, o.concurrency ?? 4));
  const vt = o.visibilityTimeout ?? 30;
  const wait = o.wait ?? 20;
  const retryDelay = o.retryDelaySec ?? ((attempts: number) => Math.min(300, 2 ** Math.max(0, attempts - 1)));
  const ackFlushMs = o.ackFlushMs ?? 200;
  const report = (e: unknown, m?: PulledMessage) => {
    try {
      o.onError?.(e, m);
    } catch {
      // a failing error callback must not stop the loop
    }
  };

  const tasks = new Map<string, Task>();
  let acks: LeaseRef[] = [];
  let running = true;
  let polling = false;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  let wake: (() => void) | undefined;
  const pollAbort = new AbortController();

  // Acks sent again after a pull failed or was cut short: the server may have applied
  // them already, and then answers lease_conflict, which is no news.
  const resent = new Set<string>();
  const refusedAcks = (results: readonly { id: string; outcome: string }[]) => {
    for (const r of results) {
      const expected = resent.delete(r.id) && r.outcome === 'lease_conflict';
      if (r.outcome !== 'acked' && !expected)
        report(new AdmpApiError(r.outcome as 'lease_conflict', `ack of ${r.id} refused: ${r.outcome}`, 409));
    }
  };

  async function flushAcks(): Promise<void> {
    flushTimer = undefined;
    while (acks.length > 0) {
      const batch = acks.splice(0, 100);
      try {
        refusedAcks(await client.ackMany(batch));
      } catch (e) {
        report(e);
        return;
      }
    }
  }

  function queueAck(ref: LeaseRef) {
    acks.push(ref);
    // The loop's next pull carries it; if a long poll is under way that may take `wait` seconds.
    if (polling && !flushTimer) flushTimer = setTimeout(() => void flushAcks(), ackFlushMs);
    wake?.();
  }

  // One timer for every running handler's heartbeat (not one per message): it fires when
  // the earliest extension is due. A task started later is due later, so arming it
  // when none is armed is enough.
  const beatMs = (vt * 1000) / 3;
  let beat: ReturnType<typeof setTimeout> | undefined;
  const giveUp = (t: Task, reason: Error) => {
    t.reason = reason;
    t.abort?.abort(reason);
  };
  function heartbeat() {
    beat = undefined;
    const now = Date.now();
    let next = Infinity;
    for (const t of tasks.values()) {
      if (t.settled) continue;
      if (t.extendAt <= now) {
        t.extendAt = now + beatMs;
        client.extend(t.m.id, t.m.lease_id, vt).catch((e: unknown) => {
          if (e instanceof AdmpApiError && (e.code === 'lease_conflict' || e.code === 'not_found')) {
            t.settled = true;
            giveUp(t, new Error(`lease of ${t.m.id} lost`));
          }
          report(e, t.m);
        });
      }
      next = Math.min(next, t.extendAt);
    }
    if (next !== Infinity) beat = setTimeout(heartbeat, next - now);
  }

  function run(m: PulledMessage) {
    const task: Task = { m, settled: false, extendAt: Date.now() + beatMs };
    const context: HandlerContext = {
      get signal() {
        if (!task.abort) {
          task.abort = new AbortController();
          if (task.reason) task.abort.abort(task.reason);
        }
        return task.abort.signal;
      },
    };
    tasks.set(m.id, task);
    beat ??= setTimeout(heartbeat, beatMs);
    task.done = (async () => {
      let failed: unknown;
      try {
        await handler(m, context);
      } catch (e) {
        failed = e ?? new Error('handler failed');
      }
      if (!task.settled) {
        task.settled = true;
        if (failed === undefined) queueAck({ id: m.id, lease_id: m.lease_id });
        else {
          report(failed, m);
          await client.release(m.id, m.lease_id, retryDelay(m.attempts)).catch((e: unknown) => report(e, m));
        }
      }
      tasks.delete(m.id);
      wake?.();
    })();
  }

  const loop = (async () => {
    let failures = 0;
    while (running) {
      const room = concurrency - tasks.size;
      if (room <= 0) {
        await new Promise<void>((ok) => (wake = ok));
        wake = undefined;
        continue;
      }
      const carried = acks.splice(0, 100);
      let res;
      polling = true;
      try {
        res = await client.pull(
          { max: room, visibility_timeout: vt, wait, ...(carried.length > 0 ? { ack: carried } : {}) },
          { signal: pollAbort.signal },
        );
      } catch (e) {
        // Applied or not, they go again.
        for (const a of carried) resent.add(a.id);
        acks.unshift(...carried);
        if (!running) break;
        report(e);
        await sleep(Math.random() * Math.min(30_000, 500 * 2 ** failures++));
        continue;
      } finally {
        polling = false;
      }
      failures = 0;
      if (res.acked) refusedAcks(res.acked);
      for (const m of res.messages) run(m);
    }
  })();

  return {
    get active() {
      return tasks.size;
    },
    async stop({ timeoutMs = vt * 1000 } = {}) {
      running = false;
      pollAbort.abort(new Error('consumer stopped'));
      wake?.();
      await loop;
      const finished = Promise.all([...tasks.values()].map((t) => t.done));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = await Promise.race([
        finished.then(() => false),
        new Promise<boolean>((ok) => (timer = setTimeout(() => ok(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (late) {
        await Promise.all(
          [...tasks.values()].map(async (t) => {
            if (t.settled) return;
            t.settled = true;
            giveUp(t, new Error('consumer stopped'));
            await client.release(t.m.id, t.m.lease_id, 0).catch((e: unknown) => report(e, t.m));
          }),
        );
      }
      clearTimeout(beat);
      clearTimeout(flushTimer);
      await flushAcks();
    },
  };
}
