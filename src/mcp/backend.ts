// What the MCP tools call: the agent API's operations with the API's answers. Over stdio
// that is an SDK client of a server; at /mcp on the API listener it is the Mailbox
// service itself, called as the authenticated agent (mailboxBackend), presenting its
// results as the HTTP routes do, so a tool answers the same over either transport.
import type { AdmpClient } from '../sdk/index.js';
import { toAdmpError } from '../errors.js';
import { leaseError, type Caller, type Mailbox } from '../mailbox/mailbox.js';
import { presentPulled, presentStatus } from '../http/present.js';
import type { RequestLimit } from '../http/request-limit.js';

export type ToolBackend = Pick<
  AdmpClient,
  'send' | 'pull' | 'ack' | 'extend' | 'release' | 'reply' | 'status' | 'deadLetters' | 'redrive'
>;

type Answer<K extends keyof ToolBackend> = Awaited<ReturnType<ToolBackend[K]>>;

/**
 * The tools over the Mailbox service for `caller`. Each call counts against the agent's
 * request limit (ADMP_API_RATE_LIMIT), as the same call over HTTP would. `recheck` checks
 * the caller's credential again when a poll parked with `wait` wakes (a revoked one gets
 * nothing).
 */
export function mailboxBackend(
  mailbox: Mailbox,
  caller: Caller,
  limit?: RequestLimit,
  recheck?: () => Promise<void>,
): ToolBackend {
  async function counted<R>(f: () => Promise<R>): Promise<R> {
    try {
      await limit?.(caller.agentId);
      return await f();
    } catch (err) {
      // A storage fault is storage_unavailable (retry later), as over HTTP; anything unknown is internal.
      throw toAdmpError(err);
    }
  }
  const sent = (r: { id: string; status: string; duplicate: boolean }) =>
    ({ id: r.id, status: r.status, ...(r.duplicate ? { duplicate: true } : {}) }) as Answer<'send'>;
  const nacked = (id: string, r: { status: string; lease_until: Date | null }) =>
    ({ id, status: r.status, lease_until: r.lease_until?.toISOString() ?? null }) as Answer<'extend'>;
  return {
    send: ({ to, ...msg }, o = {}) =>
      counted(async () => sent(await mailbox.send(caller, to, { ...msg, idempotency_key: o.idempotencyKey }))),
    pull: (r = {}) =>
      counted(async () => {
        const { rows } = await mailbox.pull(caller, {
          max: r.max ?? 10,
          wait: r.wait ?? 0,
          // A poll parked with wait_sec checks its credential again when it wakes, as over HTTP.
          ...(r.wait ? { recheck } : {}),
          ...(r.visibility_timeout !== undefined ? { visibility_timeout: r.visibility_timeout } : {}),
        });
        return { messages: rows.map((m) => presentPulled(m, caller.address)) } as Answer<'pull'>;
      }),
    ack: (id, lease_id) =>
      counted(async () => {
        const outcome = (await mailbox.ack(caller, [{ id, lease_id }])).get(id)!;
        if (outcome !== 'ok') throw leaseError(id, outcome);
        return { id, status: 'acked' as const };
      }),
    extend: (id, lease_id, sec) =>
      counted(async () => nacked(id, await mailbox.nack(caller, { id, lease_id }, { extend_sec: sec }))),
    release: (id, lease_id, delaySec = 0) =>
      counted(async () => nacked(id, await mailbox.nack(caller, { id, lease_id }, { delay_sec: delaySec }))),
    reply: (id, reply, o = {}) =>
      counted(async () => sent(await mailbox.reply(caller, id, { ...reply, idempotency_key: o.idempotencyKey }))),
    status: (id) =>
      counted(async () => {
        const { row, to } = await mailbox.status(caller, id);
        return presentStatus(row, to) as Answer<'status'>;
      }),
    deadLetters: (o = {}) =>
      counted(async () =>
        (await mailbox.deadLetters(caller, o.limit ?? 50, o.before)).map(
          (m) => ({ ...presentStatus(m, caller.address), body: m.body }) as Answer<'deadLetters'>[number],
        ),
      ),
    redrive: (ids) => counted(async () => ({ redriven: await mailbox.redrive(caller, ids) })),
  };
}
