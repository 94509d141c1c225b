// Starts the outbound worker when a relay is configured (ADMP_RELAY_URL); without
// one, messages to other organisations wait as `queued` and a warning says why.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { OutboundQueue } from '../mailbox/outbound-queue.js';
import { createRelay } from './relay.js';
import { startOutboundWorker, type OutboundWorker } from './worker.js';

export function startOutbound(
  config: Config,
  queue: OutboundQueue,
  log: Logger,
  metrics: Metrics,
): OutboundWorker | undefined {
  if (!config.relayUrl) {
    log.warn({ event: 'outbound_off' }, 'ADMP_RELAY_URL is empty: messages to other organisations stay queued');
    return undefined;
  }
  return startOutboundWorker({ queue, listen: true, config, log, relay: createRelay(config), metrics });
}
