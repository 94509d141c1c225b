// The push worker: delivers the messages of agents with a webhook endpoint. Each
// endpoint is a consumer on the pull's own claim path (Mailbox.claimForPush: a lease,
// FIFO, SKIP LOCKED), so any number of instances share the work and a message is with
// one of them at a time; it may also be pulled by the agent meanwhile. Per endpoint at
// most ADMP_WEBHOOK_CONCURRENCY requests are in flight (per instance), refilled half a
// window at a time. A 2xx answer's ack rides on the endpoint's next claim, as a pull
// carries the acks of its previous batch: one statement per cycle. Woken by the inbox NOTIFY, and by a poll that also finds new
// endpoints and retries that became due.
import type { Dispatcher } from 'undici';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { StorageOutage } from '../storage-outage.js';
import type { LeaseRef, Mailbox, ClaimedForPush } from '../mailbox/mailbox.js';
import type { PushEndpoint, WebhookEndpoints } from '../mailbox/webhook-endpoints.js';
import { presentPulled } from '../http/present.js';
import { webhookHeaders } from './sign.js';
import { nextPushStep } from './next-step.js';
import { postWebhook } from './post.js';

export interface PushDeps {
  readonly endpoints: WebhookEndpoints;
  readonly mailbox: Mailbox;
  /** Subscribes to inbox wake-ups (InboxWaiter.watch: an agent id, or none when any may have been missed); returns the unsubscribe. */
  readonly watch: (f: (agentId?: string) => void) => () => void;
  readonly config: Config;
  readonly log: Logger;
  /** The SSRF-guarded connection pool (src/net/guarded-fetch.ts). */
  readonly dispatcher: Dispatcher;
  readonly metrics?: Pick<Metrics, 'webhookAttempts' | 'webhookSeconds'>;
  /** Storage faults are logged there, once per outage. */
  readonly outage?: StorageOutage;
  readonly pollMs?: number;
}

export interface PushWorker {
  stop(): Promise<void>;
}

type PushRow = ClaimedForPush['rows'][number];

interface EndpointState {
  ep: PushEndpoint;
  inFlight: number;
  acks: LeaseRef[];
  claiming: boolean;
  again: boolean;
  /** Disabled or removed: no new claims; acks still flushed. */
  retired: boolean;
}

const POLL_MS = 1000;

/** The JSON a receiver gets (Standard Webhooks payload: type, timestamp, data). */
export function webhookPayload(row: PushRow, to: string, at: Date): string {
  const { lease_id: _, lease_until: __, ...message } = presentPulled(row, to);
  return JSON.stringify({ type: 'message.received', timestamp: at.toISOString(), data: message });
}

export function startPushWorker(deps: PushDeps): PushWorker {
  const { endpoints, mailbox, config, log, metrics } = deps;
  // A lease outlives the slowest attempt; a worker that dies leaves it to the lease sweeper.
  const leaseSec = Math.ceil(config.webhookTimeoutMs / 1000) + 30;
  const policy = { maxAttempts: config.maxAttempts, backoffMs: config.webhookBackoffMs };
  const states = new Map<string, EndpointState>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  async function deliver(st: EndpointState, row: PushRow): Promise<void> {
    const { ep } = st;
    const at = new Date();
    const body = webhookPayload(row, ep.address, at);
    const headers = webhookHeaders(row.id, Math.floor(at.getTime() / 1000), body, {
      secret: ep.secret,
      ed25519Seed: ep.ed25519Seed,
    });
    const started = performance.now();
    const answer = await postWebhook(deps.dispatcher, ep.url, headers, body, config.webhookTimeoutMs);
    const ms = Math.round(performance.now() - started);
    const attempt = { endpoint: ep.id, attempt: row.attempts, ms };
    const step = nextPushStep(row, answer, Date.now(), policy, attempt);
    const outcome = step.kind === 'ack' ? 'delivered' : step.kind === 'disable' ? 'disabled' : step.settle.kind;
    metrics?.webhookAttempts.inc({ outcome });
    metrics?.webhookSeconds.observe(ms / 1000);
    if (step.kind === 'ack') {
      st.acks.push({ id: row.id, lease_id: row.lease_id! });
      return;
    }
    if (step.kind === 'disable') {
      st.retired = true;
      await endpoints.disable(ep.id, step.reason);
      log.warn(
        { event: 'webhook_disabled', endpoint: ep.id, agent: ep.agentId, reason: step.reason },
        'webhook endpoint disabled',
      );
    }
    const recorded = await mailbox.settlePush(ep.agentId, { id: row.id, lease_id: row.lease_id! }, step.settle);
    // Look again when the retry is due, rather than at the next poll.
    if (step.settle.kind === 'retry' && recorded) setTimeout(() => void pump(st), step.settle.delayMs + 5).unref();
    log.info({ event: 'webhook', id: row.id, outcome, recorded, ...step.settle.log }, `webhook ${outcome}`);
  }

  async function pump(st: EndpointState): Promise<void> {
    if (st.claiming) {
      st.again = true;
      return;
    }
    st.claiming = true;
    try {
      do {
        st.again = false;
        const closing = stopped || st.retired;
        const room = closing ? 0 : config.webhookConcurrency - st.inFlight;
        // Refill half the window at a time (or when idle): one statement then acks and claims
        // several messages, instead of one statement per message.
        if (!closing && st.inFlight > 0 && room < Math.ceil(config.webhookConcurrency / 2)) break;
        if (room <= 0 && st.acks.length === 0) break;
        const acks = st.acks.splice(0);
        let claimed: ClaimedForPush;
        try {
          claimed = await mailbox.claimForPush(st.ep.agentId, st.ep.id, Math.max(room, 0), leaseSec, acks, st.ep.types);
        } catch (err) {
          // Kept for the next cycle; if none comes, the leases run out and the messages are pushed again.
          st.acks.unshift(...acks);
          throw err;
        }
        for (const [id, o] of claimed.acked)
          if (o !== 'ok')
            log.warn({ event: 'webhook', id, outcome: o }, 'ack after a 2xx answer did not apply (the lease ran out)');
        for (const row of claimed.rows) {
          st.inFlight++;
          void deliver(st, row)
            .catch((err) => {
              if (!deps.outage?.failed(err, 'webhooks'))
                log.warn(
                  { err, event: 'webhook', id: row.id },
                  'webhook attempt not recorded; the lease will return it',
                );
            })
            .finally(() => {
              st.inFlight--;
              void pump(st);
            });
        }
      } while (st.again);
    } catch (err) {
      if (!deps.outage?.failed(err, 'webhooks'))
        log.warn({ err, event: 'webhook', endpoint: st.ep.id }, 'webhook claim failed; will retry');
    } finally {
      st.claiming = false;
    }
    if (st.retired && st.inFlight === 0 && st.acks.length === 0 && states.get(st.ep.id) === st) states.delete(st.ep.id);
  }

  async function refresh(): Promise<void> {
    try {
      const active = await endpoints.active();
      const ids = new Set(active.map((e) => e.id));
      for (const st of states.values()) if (!ids.has(st.ep.id)) st.retired = true;
      for (const ep of active) {
        const st = states.get(ep.id);
        if (!st || st.retired)
          states.set(ep.id, { ep, inFlight: 0, acks: [], claiming: false, again: false, retired: false });
        else st.ep = ep;
      }
    } catch (err) {
      if (!deps.outage?.failed(err, 'webhooks'))
        log.warn({ err, event: 'webhook' }, 'reading webhook endpoints failed; will retry');
    }
    await Promise.all([...states.values()].map(pump));
  }

  let refreshing = Promise.resolve();
  const tick = (): void => {
    refreshing = refresh().finally(schedule);
  };
  const schedule = (): void => {
    if (!stopped) timer = setTimeout(tick, deps.pollMs ?? POLL_MS);
  };
  const unsubscribe = deps.watch((agentId) => {
    for (const st of states.values()) if (agentId === undefined || st.ep.agentId === agentId) void pump(st);
  });
  tick();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      unsubscribe();
      await refreshing;
      const busy = () => [...states.values()].some((st) => st.inFlight > 0 || st.claiming);
      while (busy()) await new Promise((r) => setTimeout(r, 20));
      // The acks of the last answers.
      await Promise.all([...states.values()].map(pump));
    },
  };
}
