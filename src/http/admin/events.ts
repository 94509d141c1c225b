// GET /admin/v1/events: server-sent events (text/event-stream) for the console's
// live overview. One look at the database serves every subscriber of this process,
// and it runs only while someone is subscribed. It looks when the queue wakes
// (the inbox LISTEN/NOTIFY wake-ups, through the Admin service), at most once per
// THROTTLE_MS however much mail arrives, and every FALLBACK_MS regardless: acks,
// refusals and outbound failures send no notification.
import type { FastifyReply } from 'fastify';
import type { Admin } from '../../admin/admin.js';
import type { Logger } from '../../log.js';

export const THROTTLE_MS = 1000;
export const FALLBACK_MS = 30_000;
const REFUSALS_SHOWN = 20;

export interface EventHub {
  subscribe(reply: FastifyReply): void;
  close(): void;
}

export function createEventHub(ops: Admin, log: Logger): EventHub {
  const subscribers = new Set<FastifyReply>();
  let fallback: NodeJS.Timeout | undefined;
  let unwatch: (() => void) | undefined;
  let pending: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  let lastLook = 0;

  const send = (r: FastifyReply, event: string, data: unknown) =>
    r.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);

  async function look(): Promise<void> {
    if (running) {
      again = true; // the queue changed while we looked: look once more after
      return;
    }
    running = true;
    lastLook = Date.now();
    try {
      const [overview, refusals] = await Promise.all([ops.overview(), ops.refusals(REFUSALS_SHOWN)]);
      for (const r of subscribers) {
        send(r, 'overview', overview);
        send(r, 'refusals', refusals);
      }
    } catch (err) {
      log.warn({ err }, 'console events: overview failed');
    } finally {
      running = false;
    }
    if (again) {
      again = false;
      wake();
    }
  }

  /** A look soon: now if the last one is THROTTLE_MS old, else when it will be. */
  function wake(): void {
    if (pending || subscribers.size === 0) return;
    pending = setTimeout(
      () => {
        pending = undefined;
        void look();
      },
      Math.max(0, lastLook + THROTTLE_MS - Date.now()),
    );
  }

  function stop(): void {
    clearInterval(fallback);
    clearTimeout(pending);
    unwatch?.();
    fallback = pending = unwatch = undefined;
  }

  return {
    subscribe(reply) {
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      // A comment line at once, so proxies and the client see the stream open.
      reply.raw.write(': admp events\n\n');
      subscribers.add(reply);
      reply.raw.on('close', () => {
        subscribers.delete(reply);
        if (subscribers.size === 0) stop();
      });
      unwatch ??= ops.watchQueue(wake);
      fallback ??= setInterval(() => void look(), FALLBACK_MS);
      void look();
    },
    close() {
      stop();
      for (const r of subscribers) r.raw.end();
      subscribers.clear();
    },
  };
}
