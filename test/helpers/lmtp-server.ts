// The LMTP adapter of a test core, on a free loopback port; closed before the core when the test ends.
import type { AddressInfo } from 'node:net';
import { createLmtpServer } from '../../src/lmtp/server.js';
import { createLogger } from '../../src/log.js';
import type { TestApi } from './api.js';

/** Starts it; returns its port. */
export async function startTestLmtp(api: TestApi, t: { after(fn: () => Promise<void>): void }): Promise<number> {
  const lmtp = createLmtpServer({
    config: api.config,
    log: createLogger('silent'),
    ingest: api.core.ingest,
    directory: api.core.directory,
  });
  await new Promise<void>((ok) => lmtp.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => lmtp.close(() => ok())));
  return (lmtp.server.address() as AddressInfo).port;
}
