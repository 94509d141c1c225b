// GET /admin/v1/events: server-sent events (text/event-stream) for the console's
// live overview. One poll of the database per interval serves every subscriber of
// this process, and it runs only while someone is subscribed.
import type { FastifyReply } from 'fastify';
import type { Admin } from '../../admin/admin.js';
import type { Logger } from '../../log.js';

const INTERVAL_MS = 5000;
const REFUSALS_SHOWN = 20;

export interface EventHub {
  subscribe(reply: FastifyReply): void;
  close(): void;
}

export function createEventHub(ops: Admin, log: Logger, intervalMs = INTERVAL_MS): EventHub {
  const subscribers = new Set<FastifyReply>();
  let timer: NodeJS.Timeout | undefined;

  const send = (r: FastifyReply, event: string, data: unknown) =>
    r.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);

  async function tick(): Promise<void> {
    try {
      const [overview, refusals] = await Promise.all([ops.overview(), ops.refusals(REFUSALS_SHOWN)]);
      for (const r of subscribers) {
        send(r, 'overview', overview);
        send(r, 'refusals', refusals);
      }
    } catch (err) {
      log.warn({ err }, 'console events: overview failed');
    }
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
        if (subscribers.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      });
      timer ??= setInterval(() => void tick(), intervalMs);
      void tick();
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const r of subscribers) r.raw.end();
      subscribers.clear();
    },
  };
}
