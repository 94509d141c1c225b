// The "growth" step (BENCH_ONLY=growth; not in the default run): does the cost stay
// flat as history piles up? For each history size, a fresh database gets that many rows
// in `message` spread over BENCH_GROWTH_AGENTS agents (a tenth a delivered backlog, the
// rest acked history, each with its dedupe key), then HTTP send and HTTP pull+ack are
// measured as in the main steps. Then, on the smallest history, BENCH_GROWTH_IDLE_POLLS
// long polls wait on as many agents while send is measured again: the server's RSS and
// the send drop. Mail ingest at each size is not measured here (bench/ingest.ts makes its
// own databases).
import { Agent, request } from 'undici';
import { addAgent } from '../src/db/agents.js';
import type { BenchPostgres } from './postgres.js';
import { settle } from './postgres.js';
import { httpPullAck, prefillInboxes } from './pull-ack.js';
import { startServer } from './server.js';
import { DOMAIN, pullInbox, SENDER, sendRecipient } from './workload.js';
import { wrkSend } from './wrk.js';

export interface GrowthSettings {
  histories: number[];
  agents: number;
  idlePolls: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  recipients: number;
  consumers: number;
  pullInboxes: number;
  batch: number;
  backlog: number;
  poolMax: number;
}

export interface GrowthRow {
  history: number;
  sendPerSec: number;
  pullAckPerSec: number;
}

export interface IdleResult {
  polls: number;
  rssBeforeMb: number;
  rssDuringMb: number;
  sendQuietPerSec: number;
  sendDuringPerSec: number;
}

const SEED_CHUNK = 500_000;

/** `rows` of history over `agents` agents `hist-N`: a tenth delivered, the rest acked, each with a dedupe key. */
async function seedHistory(db: { pool: import('pg').Pool }, rows: number, agents: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO agent (id, domain) SELECT 'hist-' || i, $2 FROM generate_series(0, $1 - 1) i ON CONFLICT DO NOTHING`,
    [agents, DOMAIN],
  );
  for (let from = 0; from < rows; from += SEED_CHUNK) {
    const n = Math.min(SEED_CHUNK, rows - from);
    await db.pool.query(
      `WITH ins AS (
         INSERT INTO message (id, to_agent_id, channel, from_agent, type, body, status, ttl_sec, created_at, expires_at,
                              delivered_at, acked_at, idempotency_key)
         SELECT gen_random_uuid(), 'hist-' || (g % $3), 'http', $4, 'history', jsonb_build_object('seq', g),
                CASE WHEN g % 10 = 0 THEN 'delivered'::message_status ELSE 'acked' END, 604800,
                now() - interval '1 day', now() + interval '6 days', now() - interval '1 day',
                CASE WHEN g % 10 = 0 THEN NULL ELSE now() - interval '1 day' END, 'h' || g
           FROM generate_series($1::bigint, $1::bigint + $2 - 1) g
         RETURNING id, to_agent_id, from_agent, idempotency_key)
       INSERT INTO message_dedupe (to_agent_id, key, message_id)
       SELECT to_agent_id, '\\x01'::bytea || sha256(convert_to(from_agent || E'\\n' || idempotency_key, 'UTF8')), id FROM ins`,
      [from, n, agents, `history@${DOMAIN}`],
    );
  }
  await db.pool.query('VACUUM ANALYZE message');
  await db.pool.query('VACUUM ANALYZE message_dedupe');
}

async function rssMb(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

export async function growthBench(
  pg: BenchPostgres,
  log: (line: string) => void,
  s: GrowthSettings,
): Promise<{ rows: GrowthRow[]; idle?: IdleResult }> {
  const rows: GrowthRow[] = [];
  let idle: IdleResult | undefined;
  for (const history of s.histories) {
    const db = await pg.database(`growth_${history}`, { migrate: true });
    try {
      const sender = await addAgent(db.pool, SENDER, DOMAIN);
      for (let i = 0; i < s.recipients; i++) await addAgent(db.pool, sendRecipient(i), DOMAIN);
      const inboxes = await Promise.all(
        Array.from({ length: s.pullInboxes }, (_, i) => addAgent(db.pool, pullInbox(i), DOMAIN)),
      );
      const t0 = performance.now();
      await seedHistory(db, history, s.agents);
      log(
        `growth: ${history} rows of history over ${s.agents} agents seeded in ${Math.round(performance.now() - t0)} ms`,
      );
      const server = await startServer(db.url, { ADMP_PG_POOL_MAX: String(s.poolMax) }, log);
      try {
        const send = (seconds: number) =>
          wrkSend(server.url, sender.token, { connections: s.connections, seconds, recipients: s.recipients });
        await send(s.warmupSeconds);
        const sent = await send(s.seconds);
        await prefillInboxes(
          db.pool,
          inboxes.map((a) => a.id),
          s.backlog,
        );
        await settle(db.pool, ['message']);
        const consumers = Array.from({ length: s.consumers }, (_, i) => ({
          token: inboxes[i % inboxes.length]!.token,
        }));
        await httpPullAck(server.url, consumers, { seconds: s.warmupSeconds, max: s.batch });
        const pulled = await httpPullAck(server.url, consumers, { seconds: s.seconds, max: s.batch });
        rows.push({ history, sendPerSec: sent.perSec, pullAckPerSec: pulled.perSec });
        log(
          `growth: ${history} rows: send ${Math.round(sent.perSec)} req/s, pull+ack ${Math.round(pulled.perSec)} msgs/s`,
        );

        if (!idle && s.idlePolls > 0) idle = await idlePolls(db.pool, server, s, send);
      } finally {
        await server.stop();
      }
    } finally {
      await db.drop();
    }
  }
  return { rows, idle };
}

/** `polls` agents each hold a long poll (re-issued as each returns) while send is measured. */
async function idlePolls(
  pool: import('pg').Pool,
  server: { url: string; pid: number },
  s: GrowthSettings,
  send: (seconds: number) => Promise<{ perSec: number }>,
): Promise<IdleResult> {
  const tokens: string[] = [];
  for (let i = 0; i < s.idlePolls; i += 16)
    tokens.push(
      ...(
        await Promise.all(
          Array.from({ length: Math.min(16, s.idlePolls - i) }, (_, j) => addAgent(pool, `idle-${i + j}`, DOMAIN)),
        )
      ).map((a) => a.token),
    );
  const quiet = await send(s.seconds);
  const rssBeforeMb = await rssMb(server.pid);
  const dispatcher = new Agent({ connections: s.idlePolls, headersTimeout: 60_000, bodyTimeout: 60_000 });
  let stopping = false;
  const poll = async (token: string): Promise<void> => {
    while (!stopping) {
      const res = await request(`${server.url}/v1/inbox/pull`, {
        method: 'POST',
        dispatcher,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ max: 1, wait: 20 }),
      });
      await res.body.text();
    }
  };
  const polls = tokens.map((t) => poll(t));
  // Let every poll reach the server and park before measuring.
  await new Promise((r) => setTimeout(r, Math.min(10_000, 1000 + s.idlePolls)));
  const during = await send(s.seconds);
  const rssDuringMb = await rssMb(server.pid);
  stopping = true;
  await Promise.all(polls);
  await dispatcher.close();
  return {
    polls: s.idlePolls,
    rssBeforeMb,
    rssDuringMb,
    sendQuietPerSec: quiet.perSec,
    sendDuringPerSec: during.perSec,
  };
}

export function growthReport(r: { rows: GrowthRow[]; idle?: IdleResult }): string {
  const base = r.rows.find((x) => x.history === 0) ?? r.rows[0];
  const ratio = (v: number, b: number | undefined) => (b ? (v / b).toFixed(2) : '–');
  const lines = [
    '| history rows | send req/s | × at 0 | pull+ack msgs/s | × at 0 |',
    '|---:|---:|---:|---:|---:|',
    ...r.rows.map(
      (x) =>
        `| ${x.history} | ${Math.round(x.sendPerSec)} | ${ratio(x.sendPerSec, base?.sendPerSec)} | ${Math.round(x.pullAckPerSec)} | ${ratio(x.pullAckPerSec, base?.pullAckPerSec)} |`,
    ),
  ];
  if (r.idle)
    lines.push(
      '',
      `${r.idle.polls} idle long polls: server RSS ${r.idle.rssBeforeMb} → ${r.idle.rssDuringMb} MB ` +
        `(+${r.idle.rssDuringMb - r.idle.rssBeforeMb} MB); send ${Math.round(r.idle.sendQuietPerSec)} → ` +
        `${Math.round(r.idle.sendDuringPerSec)} req/s (${((1 - r.idle.sendDuringPerSec / r.idle.sendQuietPerSec) * 100).toFixed(1)} % drop)`,
    );
  return lines.join('\n');
}
