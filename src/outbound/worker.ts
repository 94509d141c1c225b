// The outbound mail worker: claims due `queued` smtp messages, signs each with the
// sending agent's current key, submits it to the relay and records the outcome
// (src/outbound/next-step.ts). Runs in every instance: claims use SKIP LOCKED, so
// instances share the work without coordination. Woken by NOTIFY admp_outbound
// (enqueue_message) and by a poll that also picks up retries that became due.
import pg from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { keysDir, loadSigningKey } from '../keys/key-files.js';
import { claimDue, recordOutcome, type OutboundRow } from '../db/outbound.js';
import { renderOutbound } from './render.js';
import { nextStep } from './next-step.js';
import type { Relay } from './relay.js';
import type { RelayOutcome } from './relay-answer.js';
import type { Metrics } from '../metrics.js';

export interface OutboundDeps {
  readonly pool: pg.Pool;
  /** Database URL for the LISTEN connection; without it the worker only polls. */
  readonly url?: string;
  readonly config: Config;
  readonly log: Logger;
  readonly relay: Relay;
  readonly metrics?: Pick<Metrics, 'outbound'>;
  readonly pollMs?: number;
}

export interface OutboundWorker {
  /** Looks for due messages now. */
  kick(): void;
  stop(): Promise<void>;
}

const POLL_MS = 1000;

export function startOutboundWorker(deps: OutboundDeps): OutboundWorker {
  const { pool, config, log, relay } = deps;
  const dir = keysDir(config);
  // A claim outlives the slowest submission (connect, commands and data each get the timeout).
  const holdSec = Math.ceil((config.relayTimeoutMs * 4) / 1000) + 60;
  const active = new Set<Promise<void>>();
  let stopped = false;
  let pumping = false;
  let again = false;
  let timer: NodeJS.Timeout | undefined;

  async function attempt(row: OutboundRow): Promise<RelayOutcome & { kid?: string }> {
    const at = new Date();
    const key = await loadSigningKey(pool, dir, row.from_agent, at);
    // A missing key is our configuration fault: retried (and visible in the log) until fixed or the deadline.
    if (!key)
      return { kind: 'temporary', code: null, diagnostic: `no valid private key of ${row.from_agent} in ${dir}` };
    const mail = await renderOutbound(row, key, Math.floor(at.getTime() / 1000));
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
      const recorded = await recordOutcome(pool, row, outcome);
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
          const rows = await claimDue(pool, config.outboundConcurrency - active.size, holdSec);
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
  const listener = deps.url
    ? listen(
        deps.url,
        () => void pump(),
        (err) => log.warn({ err, event: 'outbound' }, 'LISTEN admp_outbound lost; reconnecting'),
      )
    : undefined;
  schedule();
  void pump();

  return {
    kick: () => void pump(),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await listener?.close();
      while (pumping || active.size > 0) await Promise.race([...active, new Promise((r) => setTimeout(r, 20))]);
      relay.close();
    },
  };
}

/** LISTEN admp_outbound on its own connection, reconnecting after a loss. */
function listen(url: string, onNotify: () => void, onError: (err: Error) => void): { close(): Promise<void> } {
  let client: pg.Client | undefined;
  let closed = false;
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url });
    c.on('notification', onNotify);
    c.on('error', (err) => {
      onError(err);
      client = undefined;
      if (!closed) setTimeout(() => void connect().catch(onError), 1000).unref();
    });
    await c.connect();
    await c.query('LISTEN admp_outbound');
    if (closed) await c.end();
    else client = c;
  };
  void connect().catch(onError);
  return {
    async close() {
      closed = true;
      await client?.end().catch(() => undefined);
    },
  };
}
