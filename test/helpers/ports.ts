// Loopback ports for daemons the tests start: a free number up front, and a readiness probe.
import { connect } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export { freePort } from '../../src/db/embedded.js';

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      ok(true);
    });
    s.once('error', () => ok(false));
  });
}
