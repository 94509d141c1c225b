// One pass of the queue figures on one database, as the main send and pull+ack steps
// take them: HTTP send (wrk) to random recipients, then HTTP pull+ack (pull, one batch
// ack) over a prefilled backlog, each after a warm-up. The growth and Citus steps run it
// on several databases in one run, so their figures sit side by side.
import type pg from 'pg';
import { addAgent } from '../src/db/agents.js';
import type { LoopResult } from './loops.js';
import { pullStep } from './pull-ack.js';
import type { SendResult } from './send.js';
import { DOMAIN, pullInbox, SENDER, sendRecipient } from './workload.js';
import { wrkSend } from './wrk.js';

export interface QueuePassSettings {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
  readonly recipients: number;
  readonly consumers: number;
  readonly pullInboxes: number;
  readonly batch: number;
  readonly backlog: number;
}

export interface QueueAgents {
  readonly senderToken: string;
  readonly inboxes: readonly { id: string; token: string }[];
}

export interface QueuePass {
  readonly send: SendResult;
  readonly pullAck: LoopResult;
}

/** The sender, the send recipients and the pull inboxes of the workload (bench/workload.ts). */
export async function addQueueAgents(pool: pg.Pool, s: QueuePassSettings): Promise<QueueAgents> {
  const sender = await addAgent(pool, SENDER, DOMAIN);
  for (let i = 0; i < s.recipients; i++) await addAgent(pool, sendRecipient(i), DOMAIN);
  const inboxes = await Promise.all(
    Array.from({ length: s.pullInboxes }, (_, i) => addAgent(pool, pullInbox(i), DOMAIN)),
  );
  return { senderToken: sender.token, inboxes };
}

/** wrk's send for `seconds` against a running server. */
export function sendFor(serverUrl: string, agents: QueueAgents, s: QueuePassSettings, seconds: number) {
  return wrkSend(serverUrl, agents.senderToken, { connections: s.connections, seconds, recipients: s.recipients });
}

/** Send, then pull+ack, each after its warm-up, against a running server on `pool`'s database. */
export async function queuePass(
  pool: pg.Pool,
  serverUrl: string,
  agents: QueueAgents,
  s: QueuePassSettings,
): Promise<QueuePass> {
  await sendFor(serverUrl, agents, s, s.warmupSeconds);
  const send = await sendFor(serverUrl, agents, s, s.seconds);
  const { result: pullAck } = await pullStep(pool, serverUrl, { ...s, inboxes: agents.inboxes });
  return { send, pullAck };
}

/** What went wrong in a pass, for a note beside its figures; empty when nothing did. */
export function passErrors(p: Partial<QueuePass>): string[] {
  const out: string[] = [];
  const r = p.send;
  if (r && (r.non2xx || r.errors || r.timeouts))
    out.push(`send: ${r.non2xx} non-2xx, ${r.errors} socket errors, ${r.timeouts} timeouts`);
  if (p.pullAck?.errors) out.push(`pull+ack: ${p.pullAck.errors} errors (first: ${p.pullAck.firstError})`);
  if (p.pullAck?.drained) out.push('pull+ack: the backlog ran dry before the time was up (raise BENCH_BACKLOG)');
  return out;
}
