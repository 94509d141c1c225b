// Every route answers 503 `timeout` when its budget runs out, whatever it waits on (the
// database's own deadlines, ADMP_PG_*, normally answer first).
//
// Two hooks and a timer rather than fastify's `handlerTimeout` option: that option gives
// every request an AbortController and aborts it when the connection closes, even after
// a normal answer, and building that abort's DOMException cost about 20 µs of server CPU
// per request (6 % of an HTTP send, measured with --cpu-prof). Nothing here reads an
// abort signal, so the timer alone does the job.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AdmpError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    budgetTimer: NodeJS.Timeout | null;
  }
}

/** `budgetMs(url)`: the budget of the route with this URL pattern (undefined when no route matched). */
export function installRequestBudget(app: FastifyInstance, budgetMs: (url: string | undefined) => number): void {
  app.decorateRequest('budgetTimer', null);
  app.addHook('onRequest', (req, reply, done) => {
    req.budgetTimer = setTimeout(expire, budgetMs(req.routeOptions.url), req, reply);
    done();
  });
  const clear = (req: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    if (req.budgetTimer) clearTimeout(req.budgetTimer);
    done();
  };
  app.addHook('onResponse', clear);
  app.addHook('onRequestAbort', (req, done) => clear(req, undefined as never, done));
}

function expire(req: FastifyRequest, reply: FastifyReply): void {
  req.budgetTimer = null;
  // Answered already, or a stream that owns its connection (hijacked: SSE, MCP).
  if (reply.sent) return;
  const err = new AdmpError('timeout', 'the request took too long; try again later');
  // A response already under way cannot change its status: end it instead.
  if (reply.raw.headersSent) return void reply.raw.destroy(err);
  void reply.send(err);
}
