// Long-poll wake-ups: one LISTEN connection per process on channel admp_inbox,
// whose payload is the agent id that got mail (NOTIFY from enqueue_message and
// from lease returns). Pollers arm a waiter BEFORE they look, so a message that
// lands between the look and the wait still wakes them. While the connection is
// down (src/db/listen.ts reconnects it), waits are cut to POLL_MS: pulls poll.
// Watchers (the console's event stream, the webhook push worker) hear of every wake-up, whichever inbox.
import { listen } from '../db/listen.js';

/** How often a long poll looks again while no wake-up can reach it. */
export const POLL_MS = 1000;

export interface Waiter {
  readonly promise: Promise<void>;
  cancel(): void;
}

export interface InboxWaiter {
  arm(agentId: string, timeoutMs: number): Waiter;
  /** True while wake-ups arrive (the LISTEN connection is up); readiness reports it. */
  readonly listening: boolean;
  /** True once close() was called (shutdown): long polls stop waiting. */
  readonly closed: boolean;
  /**
   * Calls `fn` on every wake-up of any inbox (mail stored, a lease returned) with its agent id,
   * and without one whenever the connection goes down or comes back (what was notified
   * meanwhile was missed). Returns the unwatch.
   */
  watch(fn: (agentId?: string) => void): () => void;
  close(): Promise<void>;
}

/** Resolves once the wake-up connection is up, or its first attempt failed (pulls then poll). */
export async function createInboxWaiter(
  url: string,
  onState: (up: boolean, err?: Error) => void,
): Promise<InboxWaiter> {
  const waiting = new Map<string, Set<() => void>>();
  const watchers = new Set<(agentId?: string) => void>();
  let closed = false;

  const wakeAll = () => {
    for (const set of waiting.values()) for (const f of set) f();
    for (const f of watchers) f();
  };

  const listener = listen(url, 'admp_inbox', {
    onNotify(agentId) {
      const set = waiting.get(agentId);
      if (set) for (const f of set) f();
      for (const f of watchers) f(agentId);
    },
    onState(up, err) {
      onState(up, err);
      // Down: pollers wake and look for themselves, then wait POLL_MS at a time.
      // Up again: whatever was notified meanwhile was missed, so everyone looks once.
      wakeAll();
    },
  });

  await listener.settled;
  return {
    get listening() {
      return listener.up;
    },
    get closed() {
      return closed;
    },
    arm(agentId, timeoutMs) {
      let done!: () => void;
      let timer: NodeJS.Timeout | undefined;
      const promise = new Promise<void>((ok) => {
        done = ok;
      });
      const set = waiting.get(agentId) ?? new Set();
      waiting.set(agentId, set);
      const finish = () => {
        clearTimeout(timer);
        set.delete(finish);
        if (set.size === 0) waiting.delete(agentId);
        done();
      };
      set.add(finish);
      timer = setTimeout(finish, listener.up ? timeoutMs : Math.min(timeoutMs, POLL_MS));
      return { promise, cancel: finish };
    },
    watch(fn) {
      watchers.add(fn);
      return () => void watchers.delete(fn);
    },
    async close() {
      closed = true;
      wakeAll();
      await listener.close();
    },
  };
}
