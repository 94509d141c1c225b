// Long-poll wake-ups: one LISTEN connection per process on channel admp_inbox,
// whose payload is the agent id that got mail (NOTIFY from enqueue_message and
// from lease returns). Pollers arm a waiter BEFORE they look, so a message that
// lands between the look and the wait still wakes them.
import { listen } from '../db/listen.js';

export interface Waiter {
  readonly promise: Promise<void>;
  cancel(): void;
}

export interface InboxWaiter {
  arm(agentId: string, timeoutMs: number): Waiter;
  /** True once close() was called (shutdown): long polls stop waiting. */
  readonly closed: boolean;
  close(): Promise<void>;
}

export async function createInboxWaiter(url: string, onError: (err: Error) => void): Promise<InboxWaiter> {
  const waiting = new Map<string, Set<() => void>>();
  let closed = false;

  const wakeAll = () => {
    for (const set of waiting.values()) for (const f of set) f();
  };

  const listener = await listen({
    url,
    channel: 'admp_inbox',
    onNotify: (agentId) => {
      const set = waiting.get(agentId);
      if (set) for (const f of set) f();
    },
    onError: (err) => {
      onError(err);
      // Pollers wake and look for themselves; they re-arm on the new connection.
      wakeAll();
    },
  });

  return {
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
      timer = setTimeout(finish, timeoutMs);
      return { promise, cancel: finish };
    },
    async close() {
      closed = true;
      wakeAll();
      await listener.close();
    },
  };
}
