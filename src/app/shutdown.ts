// Graceful shutdown of the listeners (SIGTERM/SIGINT, src/cli/serve.ts): stop
// accepting, let work in flight finish within the grace period, then cut what is left
// in a way the peer understands (LMTP 421, RFC 5321 §3.8), never by dropping it silently.
import type { FastifyInstance } from 'fastify';
import type { Server, Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';

// The HTTPS server (http2 with HTTP/1.1 beside it) has no closeAllConnections: its
// sockets are tracked here so the grace period can end them too.
const tracked = new WeakMap<object, Set<Socket>>();

/** Remembers the server's open sockets for closeHttp (servers without closeAllConnections). */
export function trackConnections(server: Server): void {
  const open = new Set<Socket>();
  tracked.set(server, open);
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
}

/** How long idle kept-alive connections stay open after SIGTERM (at most the grace period). */
const IDLE_LINGER_MS = 2000;

/**
 * Closes the HTTP listener: no new connections, requests in flight finish, and a request
 * arriving on a kept-alive connection gets 503 `shutting_down` with `Connection: close`
 * (src/http/app.ts). Node's server.close() would also destroy the idle kept-alive
 * connections at once, and a client that had just sent a request on one would see a
 * reset instead of an answer; they are closed after IDLE_LINGER_MS instead. Connections
 * still open after `graceMs` are destroyed.
 */
export async function closeHttp(app: FastifyInstance, graceMs: number): Promise<void> {
  const server = app.server as Partial<Pick<typeof app.server, 'closeAllConnections' | 'closeIdleConnections'>> &
    object;
  const closeIdle = server.closeIdleConnections?.bind(server);
  if (closeIdle) server.closeIdleConnections = () => undefined;
  const linger = closeIdle ? setTimeout(closeIdle, Math.min(graceMs, IDLE_LINGER_MS)) : undefined;
  const timer = setTimeout(() => {
    if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
    else for (const socket of tracked.get(server) ?? []) socket.destroy();
  }, graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(linger);
    clearTimeout(timer);
  }
}

/**
 * Closes the LMTP listener or the SMTP edge (the same rules for both). A client with a transaction in progress (in DATA, or
 * waiting for our replies) may finish it within the server's closeTimeout (the grace
 * period, src/lmtp/server.ts); any command it sends after that is answered 421 by
 * smtp-server, and whoever is still connected when the grace ends gets 421 and is
 * closed. Idle clients (Postfix keeps LMTP connections for reuse) cannot finish
 * anything, so they get their 421 at once rather than holding the shutdown.
 */
export function closeLmtp(server: SMTPServer): Promise<void> {
  const closed = new Promise<void>((ok) => server.close(() => ok()));
  for (const c of server.connections) {
    if (c.session?.envelope?.mailFrom) continue;
    c.send(421, 'Service shutting down, try again later');
    c.close();
  }
  return closed;
}

/**
 * After the grace period the rest of a stop (jobs, the database pool, an embedded
 * PostgreSQL's own shutdown) gets this long. Nothing acknowledged is lost by leaving
 * then: every answer was given after its commit, and a postmaster whose owner is gone
 * is stopped and started afresh by the next start (src/db/embedded.ts).
 */
export const STOP_MARGIN_MS = 10_000;

/**
 * Runs `stop` but resolves 'timeout' once `ms` have passed, so a stop that waits on
 * something that never answers (a frozen database, a peer that holds its socket open)
 * cannot keep the process alive past its deadline.
 */
export function stopWithin(stop: () => Promise<void>, ms: number): Promise<'stopped' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((ok) => {
    timer = setTimeout(() => ok('timeout'), ms);
  });
  return Promise.race([stop().then(() => 'stopped' as const), deadline]).finally(() => clearTimeout(timer));
}
