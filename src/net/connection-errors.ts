// smtp-server reports a connection's socket error (a peer that resets its connection in the
// middle of a transaction, a TLS handshake that fails) as an 'error' event on the server,
// and an 'error' nobody listens to ends the process: one client on port 25 could stop the
// SMTP edge, the other roads and the API at once. The peer's transaction ends with its
// connection, before any 250 for it, so nothing acknowledged is lost: the error is logged and
// the server goes on.
import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';

/** What smtp-server adds to a connection's error: the peer's address. */
type ConnectionError = Error & { remoteAddress?: string; code?: string };

export function logConnectionErrors(server: EventEmitter, log: Logger, road: 'lmtp' | 'smtp'): void {
  server.on('error', (err: ConnectionError) =>
    log.info(
      { event: 'connection_error', road, ip: err.remoteAddress, code: err.code, err: err.message },
      `${road.toUpperCase()} socket error`,
    ),
  );
}
