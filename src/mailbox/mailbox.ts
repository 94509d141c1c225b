// The agent-facing operations, the only way every interface (HTTP routes, and the
// adapters to come) reaches an agent's mail: send, pull with a lease (long poll),
// ack, nack/extend, reply, status, depth, dead letters, redrive. Orchestration over
// the directory, the enqueue batcher, the claim path and the inbox waiter.
import type pg from 'pg';
import type { Config } from '../config.js';
import { AdmpError } from '../errors.js';
import { fingerprint } from '../core/fingerprint.js';
import { canonicalJson } from '../core/canonical-json.js';
import { acrossTenants } from '../core/domains.js';
import { inTransaction } from '../db/pool.js';
import { ack, claim, claimForPush, nack, type ClaimedForPush } from '../db/claim.js';
import { settlePush, type PushSettlement } from '../db/webhooks.js';
import { inboxDepth, listDead, messageFor, oldestDead, redrive, REDRIVE_BATCH, type DeadCursor } from '../db/status.js';
import { lockForReply, recordReply } from '../db/reply.js';
import { enqueueRows, notifyEnqueued } from '../db/enqueue.js';
import type {
  Claimed,
  EnqueueResult,
  LeaseOutcome,
  LeaseRef,
  MessageRow,
  MessageStatus,
  NewMessage,
  PulledRow,
} from '../db/message-row.js';
import type { Envelope } from '../core/envelope.js';
import type { Directory, Recipient } from './directory.js';
import type { Enqueuer } from './batcher.js';
import type { InboxWaiter } from './inbox-waiter.js';
import { observeEnqueue, since, type Metrics } from '../metrics.js';
import type { QuotaCharge, QuotaGate, QuotaSubject } from '../policy/rate-quotas.js';
import { withSpan } from '../tracing.js';
import { clientTime } from '../core/time.js';
import { unstorableJson } from '../core/storable.js';
import { createGate } from '../core/gate.js';
import { MAILBOX_LIMITS, checkOutgoing } from './limits.js';
import { bounded, boundedList } from '../core/bounds.js';

export interface Caller {
  readonly agentId: string;
  readonly domain: string;
  readonly address: string;
}

export type {
  Claimed,
  ClaimedForPush,
  EnqueueResult,
  LeaseOutcome,
  LeaseRef,
  MessageRow,
  MessageStatus,
  PulledRow,
  PushSettlement,
};

/** What an agent sends: the envelope without its recipient, and the caller's idempotency key. */
export type Outgoing = Omit<Envelope, 'to'> & { idempotency_key?: string };

/** nack: extend the lease by `extend_sec`, or release the message to the inbox after `delay_sec`. */
export interface NackRequest {
  extend_sec?: number;
  delay_sec?: number;
}

/** A message as its sender or recipient sees it, with the recipient's address. */
export interface MessageView {
  row: MessageRow;
  to: string;
}

export interface PullOptions {
  max: number;
  visibility_timeout?: number;
  wait?: number;
  /** Leases of the previous batch to ack first, in the claim's own transaction. */
  ack?: readonly LeaseRef[];
  /**
   * Called after each wake-up of a long poll, before it looks again: throws when the
   * caller may no longer pull (its credential was revoked while the poll was parked).
   */
  recheck?: () => Promise<void>;
}

export interface Mailbox {
  send(caller: Caller, to: string, msg: Outgoing): Promise<EnqueueResult>;
  /** Claims messages (long poll); `acked` holds the outcome of each `opts.ack`. */
  pull(caller: Caller, opts: PullOptions): Promise<Claimed>;
  /** Acks a batch of leases; each one's outcome by message id. */
  ack(caller: Caller, refs: readonly LeaseRef[]): Promise<Map<string, LeaseOutcome>>;
  /** Extends a lease or releases the message; a message whose attempts are spent goes dead. */
  nack(caller: Caller, ref: LeaseRef, req: NackRequest): Promise<{ status: MessageStatus; lease_until: Date | null }>;
  reply(caller: Caller, originalId: string, msg: Outgoing & { lease_id?: string }): Promise<EnqueueResult>;
  /** A message the caller sent or received. */
  status(caller: Caller, id: string): Promise<MessageView>;
  depth(caller: Caller): Promise<Record<MessageStatus, number>>;
  deadLetters(caller: Caller, limit: number, before?: string): Promise<MessageRow[]>;
  /**
   * Requeues dead letters (the given ids, or all); returns the ids requeued. `all` goes
   * oldest first in batches of REDRIVE_BATCH, each its own statement (locks and undo stay
   * bounded however many there are); the walk only moves forward in creation order, so it
   * ends even if letters it requeued die again meanwhile (those stay dead).
   */
  redrive(caller: Caller, ids: readonly string[] | 'all'): Promise<string[]>;
  /**
   * The webhook push worker's pull: the same claim path (lease, FIFO, SKIP LOCKED), only
   * messages of `types` (all when null); `acks` are leases of messages the endpoint
   * answered 2xx, acked in the same statement.
   */
  claimForPush(
    agentId: string,
    endpointId: string,
    max: number,
    visibilitySec: number,
    acks: readonly LeaseRef[],
    types: readonly string[] | null,
  ): Promise<ClaimedForPush>;
  /** Records a push attempt that was not acknowledged; false when the lease was no longer current. */
  settlePush(agentId: string, ref: LeaseRef, s: PushSettlement): Promise<boolean>;
}

/** Why a lease operation on message `id` did not apply, as the error the caller gets. */
export function leaseError(id: string, outcome: Exclude<LeaseOutcome, 'ok'>): AdmpError {
  return {
    not_found: new AdmpError('not_found', `no message ${id}`),
    forbidden: new AdmpError('forbidden', `message ${id} is not in your inbox`),
    lease_conflict: new AdmpError(
      'lease_conflict',
      `lease is not current for message ${id} (expired and taken by another consumer, or already acked)`,
    ),
  }[outcome];
}

export interface MailboxDeps {
  pool: pg.Pool;
  config: Config;
  directory: Directory;
  enqueuer: Enqueuer;
  waiter: InboxWaiter;
  /** The policy's rate quotas, counted on every send and reply (docs/policy.md). */
  quotas?: QuotaGate;
  metrics?: Metrics;
}

/** Wake-ups of delayed releases held at once (about 100 bytes each). */
const MAX_DELAYED_WAKES = 10_000;
const recipientDomain = (r: Recipient): string => r.address.slice(r.address.lastIndexOf('@') + 1);

export function createMailbox({ pool, config, directory, enqueuer, waiter, quotas, metrics }: MailboxDeps): Mailbox {
  // A message released with a delay becomes visible only then, so the polls parked on its
  // inbox (on every instance: a NOTIFY) are woken at that time. Held by this process: if it
  // stops first, the polls find the message at their next look. At most MAX_DELAYED_WAKES
  // are pending; past that, likewise.
  let delayedWakes = 0;
  const wakeLater = (agentId: string, delaySec: number) => {
    if (delayedWakes >= MAX_DELAYED_WAKES) return;
    delayedWakes++;
    setTimeout(() => {
      delayedWakes--;
      notifyEnqueued(pool, [agentId], false).catch(() => undefined); // a lost wake-up only delays
    }, delaySec * 1000).unref();
  };

  // Long polls look through this gate, holding at most half of the pool: 10,000 of them
  // arriving at once queue here, not in the pool, so sends and acks keep the other half
  // (and nobody waits out the pool's connection timeout). Pulls without `wait` (busy
  // consumers) do not pass it.
  const pollGate = createGate(Math.max(1, Math.floor(config.pgPoolMax / 2)));

  const subject = (caller: Caller, to: Recipient, msg: Outgoing, correlationId: string | null): QuotaSubject => ({
    from: caller.address,
    to: to.address,
    type: msg.type,
    subject: msg.subject ?? null,
    correlation_id: correlationId,
  });

  /** Throws `rate_limited` (429 with Retry-After) for a message the enqueue refused as over a quota. */
  function checkedQuota(r: EnqueueResult, charges: readonly QuotaCharge[], s: QuotaSubject): EnqueueResult {
    // Alone in its group, a refused message is over one of its own charges.
    if (r.refused) throw quotas!.refusal(charges, r.refused, s, 'http')!;
    return r;
  }

  function countAcks(outcomes: ReadonlyMap<string, LeaseOutcome>): void {
    for (const o of outcomes.values()) metrics?.acks.inc({ outcome: o });
  }

  async function claimTimed(
    agentId: string,
    max: number,
    visibility: number,
    acks: readonly LeaseRef[],
  ): Promise<Claimed> {
    const started = performance.now();
    const claimed = await claim(pool, agentId, max, visibility, acks);
    metrics?.pullSeconds.observe(since(started));
    metrics?.pulled.inc(claimed.rows.length);
    countAcks(claimed.acked);
    return claimed;
  }

  function row(caller: Caller, to: Recipient, msg: Outgoing, extra: Partial<NewMessage> = {}): NewMessage {
    // Every interface (HTTP, MCP, the console) hands its input here: refused before any
    // serialiser or the database meets NUL, a lone surrogate or unbounded nesting.
    const unstorable = unstorableJson(msg, 'message');
    if (unstorable) throw new AdmpError('invalid_json', unstorable);
    checkOutgoing(msg);
    // With an Idempotency-Key the fingerprint needs the body's canonical JSON: its size is
    // the size of JSON.stringify's (the same members and the same string and number
    // forms, only in another order), so the body is serialised once, not twice.
    const canonicalBody = msg.idempotency_key ? canonicalJson(msg.body) : undefined;
    if (Buffer.byteLength(canonicalBody ?? JSON.stringify(msg.body)) > config.maxBodyBytes) {
      throw new AdmpError('payload_too_large', `body is larger than ${config.maxBodyBytes} bytes`);
    }
    const toAddress = to.address;
    return {
      to_agent_id: to.kind === 'local' ? to.agentId : to.address,
      // A local recipient's inbox gets the row at once (the commit is the delivery);
      // a remote one waits as `queued` for the outbound mail worker.
      channel: to.kind === 'local' ? 'http' : 'smtp',
      status: to.kind === 'local' ? 'delivered' : 'queued',
      from_agent: caller.address,
      subject: msg.subject ?? null,
      type: msg.type,
      body: msg.body,
      correlation_id: msg.correlation_id ?? null,
      idempotency_key: msg.idempotency_key ?? null,
      ttl_sec: msg.ttl_sec ?? config.defaultTtlSec,
      source_fingerprint: msg.idempotency_key
        ? fingerprint(
            {
              from: caller.address,
              to: toAddress,
              type: msg.type,
              subject: msg.subject,
              correlation_id: msg.correlation_id,
              body: msg.body,
              unique_id: `idem:${msg.idempotency_key}`,
            },
            canonicalBody,
          )
        : null,
      // bob+detail@…: the RFC 5233 detail stays on the message (shown as `detail`); so does
      // the address token it was sent to, which the sender sees instead of the agent's name.
      ...(to.kind === 'local' && (to.detail || to.token)
        ? { headers: { ...(to.detail ? { detail: to.detail } : {}), ...(to.token ? { token: to.token } : {}) } }
        : {}),
      ...extra,
    };
  }

  function checked(r: EnqueueResult, key: string | undefined): EnqueueResult {
    if (r.conflict)
      throw new AdmpError('idempotency_conflict', `Idempotency-Key "${key}" was already used for a different message`, {
        id: r.id,
      });
    return r;
  }

  return {
    async send(caller, to, msg) {
      const recipient = await directory.resolve(to);
      // HTTP sends bypass the mail policy (the credential names the sender), so tenants are kept apart here.
      if (recipient.kind === 'local' && acrossTenants(config.domains, caller.domain, recipientDomain(recipient)))
        throw new AdmpError('policy_denied', `agents of ${caller.domain} may not send to another tenant's agents`);
      const s = subject(caller, recipient, msg, msg.correlation_id ?? null);
      const charges = quotas ? await quotas.charges(s) : undefined;
      const r = await enqueuer.enqueue(row(caller, recipient, msg), charges?.length ? charges : undefined);
      return checked(checkedQuota(r, charges ?? [], s), msg.idempotency_key);
    },

    pull(caller, opts) {
      return withSpan(
        'admp.pull',
        { 'admp.agent': caller.agentId, 'admp.max': opts.max, 'admp.wait_sec': opts.wait ?? 0 },
        async (span) => {
          bounded(opts.max, 'max', 1, MAILBOX_LIMITS.pullMax);
          if (opts.ack?.length) boundedList(opts.ack, 'ack', 1, MAILBOX_LIMITS.ackBatch);
          const asked = opts.visibility_timeout ?? config.defaultVisibilitySec;
          const visibility = Math.min(
            bounded(asked, 'visibility_timeout', 1, MAILBOX_LIMITS.leaseSec),
            config.maxVisibilitySec,
          );
          const deadline = Date.now() + bounded(opts.wait ?? 0, 'wait', 0, MAILBOX_LIMITS.waitSec) * 1000;
          let acks = opts.ack ?? [];
          let acked: Claimed['acked'] | undefined;
          for (;;) {
            // Arm before looking, so a NOTIFY between the look and the wait is not lost.
            // A closed waiter (shutdown) ends long polls at once with what there is.
            const remaining = deadline - Date.now();
            const waiting = remaining > 0 && !waiter.closed ? waiter.arm(caller.agentId, remaining) : undefined;
            const look = () => claimTimed(caller.agentId, opts.max, visibility, acks);
            const claimed = opts.wait ? await pollGate.run(look) : await look();
            // The acks are done by the first look; the looks after a wake-up only claim.
            acked ??= claimed.acked;
            acks = [];
            if (claimed.rows.length > 0 || !waiting) {
              waiting?.cancel();
              span.setAttributes({ 'admp.pulled': claimed.rows.length, 'admp.acked': acked.size });
              return { rows: claimed.rows, acked };
            }
            await waiting.promise;
            await opts.recheck?.();
          }
        },
      );
    },

    ack(caller, refs) {
      return withSpan('admp.ack', { 'admp.agent': caller.agentId, 'admp.batch': refs.length }, async () => {
        const outcomes = await ack(pool, caller.agentId, boundedList(refs, 'items', 1, MAILBOX_LIMITS.ackBatch));
        countAcks(outcomes);
        return outcomes;
      });
    },

    async nack(caller, ref, req) {
      if (req.extend_sec !== undefined && req.delay_sec !== undefined)
        throw new AdmpError('bad_request', 'body: give extend_sec or delay_sec, not both', { field: 'body' });
      const action =
        req.extend_sec !== undefined
          ? {
              kind: 'extend' as const,
              sec: Math.min(bounded(req.extend_sec, 'extend_sec', 1, MAILBOX_LIMITS.leaseSec), config.maxVisibilitySec),
            }
          : {
              kind: 'release' as const,
              delaySec: bounded(req.delay_sec ?? 0, 'delay_sec', 0, MAILBOX_LIMITS.releaseDelaySec),
            };
      const r = await nack(pool, caller.agentId, ref, action, config.maxAttempts);
      if (r.outcome !== 'ok') throw leaseError(ref.id, r.outcome);
      if (action.kind === 'release' && action.delaySec > 0 && r.status === 'delivered')
        wakeLater(caller.agentId, action.delaySec);
      if (r.status === 'dead') metrics?.dead.inc({ reason: 'max_attempts' });
      return { status: r.status!, lease_until: r.lease_until ?? null };
    },

    async status(caller, id) {
      const row = await messageFor(pool, id, caller.agentId, caller.address);
      if (!row) throw new AdmpError('not_found', `no message ${id}`);
      if (row === 'forbidden') throw new AdmpError('forbidden', `message ${id} is neither from you nor to you`);
      // Mail sent to an address token shows the token to anyone but its recipient.
      const token = row.headers?.token;
      if (typeof token === 'string' && row.to_agent_id !== caller.agentId) return { row, to: token };
      // A remote recipient and a tenant's agent are stored as their address; another local one as its agent id.
      const to = row.to_agent_id.includes('@')
        ? row.to_agent_id
        : `${row.to_agent_id}@${(await directory.localAgent(row.to_agent_id))?.domain ?? config.domains[0]}`;
      return { row, to };
    },

    depth: (caller) => inboxDepth(pool, caller.agentId),

    deadLetters: async (caller, limit, before) =>
      listDead(
        pool,
        caller.agentId,
        bounded(limit, 'limit', 1, MAILBOX_LIMITS.deadLetters),
        before === undefined ? undefined : clientTime(before, 'before'),
      ),

    async redrive(caller, ids) {
      if (ids !== 'all') return redrive(pool, caller.agentId, boundedList(ids, 'ids', 0, MAILBOX_LIMITS.redriveIds));
      const done: string[] = [];
      for (let after: DeadCursor | undefined; ;) {
        const batch = await oldestDead(pool, caller.agentId, REDRIVE_BATCH, after);
        if (batch.length > 0)
          done.push(
            ...(await redrive(
              pool,
              caller.agentId,
              batch.map((d) => d.id),
            )),
          );
        if (batch.length < REDRIVE_BATCH) return done;
        after = batch[batch.length - 1];
      }
    },

    async claimForPush(agentId, endpointId, max, visibilitySec, acks, types) {
      const claimed = await claimForPush(pool, agentId, max, visibilitySec, acks, endpointId, types);
      countAcks(claimed.acked);
      return claimed;
    },

    async settlePush(agentId, ref, s) {
      const done = await settlePush(pool, agentId, ref, s);
      if (done && s.kind === 'dead') metrics?.dead.inc({ reason: s.reason });
      return done;
    },

    async reply(caller, originalId, msg) {
      let channel: NewMessage['channel'] = 'http';
      const result = await inTransaction(pool, async (client) => {
        const original = await lockForReply(client, originalId, caller.agentId);
        const to = await directory.resolve(original.from_agent, 'original sender');
        const item = row(caller, to, msg, {
          correlation_id: original.correlation_id ?? original.id,
          in_reply_to: original.id,
        });
        channel = item.channel;
        // Counted in the statement that stores the reply; a refusal rolls back the transaction.
        const s = subject(caller, to, msg, item.correlation_id ?? null);
        const charges = quotas ? await quotas.charges(s) : undefined;
        const quota = charges?.length ? { counters: [charges], groups: [0], nowUs: Date.now() * 1000 } : undefined;
        const stored = (await enqueueRows(client, [item], { quotas: quota }))[0]!;
        const result = checked(checkedQuota(stored, charges ?? [], s), msg.idempotency_key);
        // An idempotent replay of the same reply answers like the first time.
        if (result.duplicate && result.id === original.reply) return result;
        // Any other second reply is refused; throwing rolls back the row just inserted.
        if (original.reply)
          throw new AdmpError('lease_conflict', `message ${originalId} was already answered by ${original.reply}`, {
            reply: original.reply,
          });
        await recordReply(client, original, result.id, msg.lease_id);
        return result;
      });
      // Counted after the commit: a refused second reply rolls back and is no enqueue.
      if (metrics) observeEnqueue(metrics, channel, result.duplicate);
      return result;
    },
  };
}
