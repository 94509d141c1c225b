// The outbound mail worker: claims due `queued` smtp messages, signs each with the
// sending agent's current key, submits it to the relay and records the outcome
// (src/outbound/next-step.ts). Runs in every instance: claims use SKIP LOCKED, so
// instances share the work without coordination. Woken by NOTIFY admp_outbound
// (enqueue_message) and by a poll that also picks up retries that became due.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Listener, OutboundQueue, OutboundRow } from '../mailbox/outbound-queue.js';
import { renderOutbound } from './render.js';
import { nextStep } from './next-step.js';
import type { Relay } from './relay.js';
import type { RelayOutcome } from './relay-answer.js';
import type { Metrics } from '../metrics.js';

export interface OutboundDeps {
  readonly queue: OutboundQueue;
  /** Listen for NOTIFY admp_outbound; without it the worker only polls. */
  readonly listen?: boolean;
  readonly config: Config;
  readonly log: Logger;
  readonly relay: Relay;
  readonly metrics?: Pick<Metrics, 'outbound'>;
  readonly pollMs?: number;
}

export interface OutboundWorker {
  stop(): Promise<void>;
}

const POLL_MS = 1000;

export function startOutboundWorker(deps: OutboundDeps): OutboundWorker {
  const { queue, config, log, relay } = deps;
  // A claim outlives the slowest submission (connect, commands and data each get the timeout).
  const holdSec = Math.ceil((config.relayTimeoutMs * 4) / 1000) + 60;
  const active = new Set<Promise<void>>();
  let stopped = false;
  let pumping = false;
  let again = false;
  let timer: NodeJS.Timeout | undefined;

  async function attempt(row: OutboundRow): Promise<RelayOutcome & { kid?: string }> {
    const at = new Date();
    const key = await queue.signingKey(row.from_agent, at);
    // A missing key is our configuration fault: retried (and visible in the log) until fixed or the deadline.
    if (!key)
      return {
        kind: 'temporary',
        code: null,
        diagnostic: `no valid private key of ${row.from_agent} in ${queue.keysDir}`,
      };
    const nowSec = Math.floor(at.getTime() / 1000);
    const mail = await renderOutbound(row, key, nowSec, queue.returnPath(row, nowSec));
    return { ...(await relay.submit(mail, row.id)), kid: key.kid };
  }

  async function deliver(row: OutboundRow): Promise<void> {
    try {
      const answer = await attempt(row);
      const step = nextStep(row, answer, Date.now(), {
        backoffMs: config.outboundBackoffMs,
        deadlineSec: config.outboundDeadlineSec,
      });
      const outcome = answer.kid ? { ...step, log: { ...step.log, kid: answer.kid } } : step;
      const recorded = await queue.recordOutcome(row, outcome);
      log.info(
        { event: 'outbound', id: row.id, to: row.to_agent_id, ...outcome.log, recorded },
        `outbound ${String(outcome.log.event)}`,
      );
      deps.metrics?.outbound.inc({ outcome: String(outcome.log.event) });
    } catch (err) {
      // Nothing recorded: the claim runs out and the message is tried again.
      log.warn({ err, event: 'outbound', id: row.id }, 'outbound attempt failed; will retry when the claim expires');
    }
  }

  async function pump(): Promise<void> {
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        while (!stopped && active.size < config.outboundConcurrency) {
          const rows = await queue.claimDue(config.outboundConcurrency - active.size, holdSec);
          for (const row of rows) {
            const p: Promise<void> = deliver(row).finally(() => {
              active.delete(p);
              void pump();
            });
            active.add(p);
          }
          if (rows.length === 0) break;
        }
      } while (again && !stopped);
    } catch (err) {
      log.warn({ err, event: 'outbound' }, 'outbound claim failed; will retry');
    } finally {
      pumping = false;
    }
  }

  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => void pump().finally(schedule), deps.pollMs ?? POLL_MS);
  };
  // Down, the poll above still finds due messages; up again, look at once for what was missed.
  const listener: Listener | undefined = deps.listen
    ? queue.onEnqueued(
        () => void pump(),
        (up, err) =>
          up
            ? void pump()
            : log.warn({ err, event: 'outbound' }, 'LISTEN admp_outbound lost; polling until it is back'),
      )
    : undefined;
  schedule();
  void pump();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await listener?.close();
      while (pumping || active.size > 0) await Promise.race([...active, new Promise((r) => setTimeout(r, 20))]);
      relay.close();
    },
  };
}
