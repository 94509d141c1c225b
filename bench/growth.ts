// The "growth" step (BENCH_ONLY=growth; not in the default run): does the cost stay
// flat as history piles up? For each history size, a fresh database gets that many rows
// in `message` spread over BENCH_GROWTH_AGENTS agents (a tenth a delivered backlog, the
// rest acked history, each with its dedupe key), then HTTP send and HTTP pull+ack are
// measured as in the main steps, and mail ingest as the ingest step's 5 KB case trusting
// Rspamd. Then, on the first history, BENCH_GROWTH_IDLE_POLLS long polls wait on as many
// agents while send is measured again: the server's RSS and the send drop.
import type pg from 'pg';
import { Agent, request } from 'undici';
import { addAgent } from '../src/db/agents.js';
import { cpuWindow } from './cpu.js';
import { treeRssKb } from './ingest-smtp.js';
import { ingestPass, prepareIngest } from './ingest-pass.js';
import type { BenchPostgres } from './postgres.js';
import { addQueueAgents, passErrors, queuePass, sendFor, type QueuePassSettings } from './queue-pass.js';
import type { SendResult } from './send.js';
import { startServer } from './server.js';
import { DOMAIN } from './workload.js';

export interface GrowthSettings extends QueuePassSettings {
  histories: number[];
  agents: number;
  idlePolls: number;
  ingestConnections: number;
  poolMax: number;
}

export interface GrowthRow {
  history: number;
  sendPerSec: number;
  pullAckPerSec: number;
  ingestPerSec: number;
  /** What went wrong in the measured windows (non-2xx answers, errors); empty when nothing did. */
  errors: string[];
}

export interface IdleResult {
  polls: number;
  rssBeforeMb: number;
  rssDuringMb: number;
  sendQuietPerSec: number;
  sendDuringPerSec: number;
  /** The server's CPU per successful send (µs), steadier than req/s on a shared box. */
  serverUsQuiet: number;
  serverUsDuring: number;
  /** Other work on the box during each window, % of one core (bench/cpu.ts). */
  foreignQuiet: number;
  foreignDuring: number;
  /** Long-poll answers during the window: each should come after its full wait, with nothing. */
  answers: number;
  /** Answers that were not 200, or requests that failed. */
  pollErrors: number;
  firstPollError?: string;
}

const SEED_CHUNK = 500_000;

/**
 * `rows` of history over `agents` agents `hist-N`: a tenth delivered, the rest acked, each
 * with a dedupe key and a search entry, and ids made by enqueue_message's own id function.
 * The indexes of `message`, `message_dedupe` and `message_search` are dropped meanwhile and
 * built again after (a bulk build is minutes quicker than 5,000,000 inserts into each; the
 * result is the same indexes).
 */
async function seedHistory(db: { pool: pg.Pool }, rows: number, agents: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO agent (id, domain) SELECT 'hist-' || i, $2 FROM generate_series(0, $1 - 1) i ON CONFLICT DO NOTHING`,
    [agents, DOMAIN],
  );
  const { rows: indexes } = await db.pool.query<{ table: string; name: string; def: string; pkey: string | null }>(
    `SELECT i.indrelid::regclass::text AS table, i.indexrelid::regclass::text AS name,
            pg_get_indexdef(i.indexrelid) AS def, c.conname AS pkey
       FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype = 'p'
      WHERE i.indrelid IN ('message'::regclass, 'message_dedupe'::regclass, 'message_search'::regclass)`,
  );
  for (const x of indexes)
    await db.pool.query(x.pkey ? `ALTER TABLE ${x.table} DROP CONSTRAINT ${x.pkey}` : `DROP INDEX ${x.name}`);
  for (let from = 0; from < rows; from += SEED_CHUNK) {
    const n = Math.min(SEED_CHUNK, rows - from);
    await db.pool.query(
      `WITH ins AS (
         INSERT INTO message (id, to_agent_id, channel, from_agent, type, body, status, ttl_sec, created_at, expires_at,
                              delivered_at, acked_at, idempotency_key)
         SELECT admp_uuid_v7(), 'hist-' || (g % $3), 'http', $4, 'history', jsonb_build_object('seq', g),
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
  // Their search entries, as enqueue_message writes them (migrations/0019_message_search_table.sql).
  await db.pool.query(
    `INSERT INTO message_search (created_at, to_agent_id, id, from_agent, correlation_id)
     SELECT created_at, to_agent_id, id, from_agent, correlation_id FROM message`,
  );
  const client = await db.pool.connect();
  try {
    await client.query("SET maintenance_work_mem = '512MB'");
    for (const x of indexes) {
      await client.query(x.def);
      if (x.pkey)
        await client.query(`ALTER TABLE ${x.table} ADD CONSTRAINT ${x.pkey} PRIMARY KEY USING INDEX ${x.name}`);
    }
  } finally {
    client.release();
  }
  await db.pool.query('VACUUM ANALYZE message');
  await db.pool.query('VACUUM ANALYZE message_dedupe');
  await db.pool.query('VACUUM ANALYZE message_search');
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
    const ingest = await prepareIngest(db.pool);
    try {
      const agents = await addQueueAgents(db.pool, s);
      const t0 = performance.now();
      await seedHistory(db, history, s.agents);
      log(
        `growth: ${history} rows of history over ${s.agents} agents seeded in ${Math.round(performance.now() - t0)} ms`,
      );
      const server = await startServer(db.url, { ADMP_PG_POOL_MAX: String(s.poolMax), ...ingest.env }, log);
      try {
        const pass = await queuePass(db.pool, server.url, agents, s);
        const ingested = await ingestPass(server.url, ingest, { ...s, connections: s.ingestConnections });
        const errors = passErrors(pass);
        if (ingested.non2xx || ingested.errors || ingested.timeouts)
          errors.push(`ingest: status codes ${JSON.stringify(ingested.statusCodes)}, errors ${ingested.errors}`);
        rows.push({
          history,
          sendPerSec: pass.send.perSec,
          pullAckPerSec: pass.pullAck.perSec,
          ingestPerSec: ingested.perSec,
          errors,
        });
        log(
          `growth: ${history} rows: send ${Math.round(pass.send.perSec)} req/s, pull+ack ${Math.round(pass.pullAck.perSec)} msgs/s, ingest ${Math.round(ingested.perSec)} msgs/s${errors.length ? ` (${errors.join('; ')})` : ''}`,
        );

        if (!idle && s.idlePolls > 0)
          idle = await idlePolls(db.pool, server, s, (seconds) => sendFor(server.url, agents, s, seconds));
      } finally {
        await server.stop();
      }
    } finally {
      await ingest.stop();
      await db.drop();
    }
  }
  return { rows, idle };
}

/** Resolves once the process tree of `pid` has used under 10 % of a core for two 1-second windows running (at most 120 s). */
async function settled(pid: number): Promise<void> {
  for (let i = 0, calm = 0; i < 120 && calm < 2; i++) {
    const close = cpuWindow({ server: pid });
    await new Promise((r) => setTimeout(r, 1000));
    calm = close().server! < 10 ? calm + 1 : 0;
  }
}

/** `polls` agents each hold a long poll (re-issued as each returns) while send is measured. */
async function idlePolls(
  pool: pg.Pool,
  server: { url: string; pid: number },
  s: GrowthSettings,
  send: (seconds: number) => Promise<SendResult>,
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
  const measured = async () => {
    const close = cpuWindow({ server: server.pid });
    const started = performance.now();
    const r = await send(s.seconds);
    const cpu = close();
    const cpuSec = ((cpu.server ?? 0) / 100) * ((performance.now() - started) / 1000);
    return { r, us: r.ok ? (cpuSec * 1e6) / r.ok : 0, foreign: cpu.foreign ?? 0 };
  };
  const quiet = await measured();
  const rssBeforeMb = treeRssKb(server.pid) / 1024;
  const dispatcher = new Agent({ connections: s.idlePolls, headersTimeout: 60_000, bodyTimeout: 60_000 });
  let stopping = false;
  let answers = 0;
  let pollErrors = 0;
  let firstPollError: string | undefined;
  const failed = (why: string) => {
    pollErrors++;
    firstPollError ??= why;
  };
  const poll = async (token: string): Promise<void> => {
    while (!stopping) {
      try {
        const res = await request(`${server.url}/v1/inbox/pull`, {
          method: 'POST',
          dispatcher,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ max: 1, wait: 20 }),
        });
        const text = await res.body.text();
        answers++;
        if (res.statusCode !== 200) failed(`HTTP ${res.statusCode} ${text.slice(0, 200)}`);
        else continue;
      } catch (err) {
        if (stopping) return; // the dispatcher was closed under it
        failed((err as Error).message);
      }
      // A failed poll is not re-issued at once: a loop of instant failures would measure itself.
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  const polls = tokens.map((t) => poll(t));
  // Every poll authenticates and looks once before it parks: measure only after the
  // server has settled (its CPU below a tenth of a core for two seconds running).
  await settled(server.pid);
  const counted = answers;
  const during = await measured();
  const rssDuringMb = treeRssKb(server.pid) / 1024;
  answers -= counted;
  stopping = true;
  await dispatcher.destroy();
  await Promise.allSettled(polls);
  return {
    polls: s.idlePolls,
    rssBeforeMb,
    rssDuringMb,
    sendQuietPerSec: quiet.r.perSec,
    sendDuringPerSec: during.r.perSec,
    serverUsQuiet: quiet.us,
    serverUsDuring: during.us,
    foreignQuiet: quiet.foreign,
    foreignDuring: during.foreign,
    answers,
    pollErrors,
    ...(firstPollError ? { firstPollError } : {}),
  };
}

export function growthReport(r: { rows: GrowthRow[]; idle?: IdleResult }): string {
  const base = r.rows.find((x) => x.history === 0) ?? r.rows[0];
  const ratio = (v: number, b: number | undefined) => (b ? (v / b).toFixed(2) : '–');
  const lines = [
    '| history rows | send req/s | × at 0 | pull+ack msgs/s | × at 0 | ingest msgs/s | × at 0 |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...r.rows.map(
      (x) =>
        `| ${x.history} | ${Math.round(x.sendPerSec)} | ${ratio(x.sendPerSec, base?.sendPerSec)} | ${Math.round(x.pullAckPerSec)} | ${ratio(x.pullAckPerSec, base?.pullAckPerSec)} | ${Math.round(x.ingestPerSec)} | ${ratio(x.ingestPerSec, base?.ingestPerSec)} |`,
    ),
    ...r.rows.flatMap((x) => x.errors.map((e) => `- ${x.history} rows: ${e}`)),
  ];
  if (r.idle) {
    const i = r.idle;
    lines.push(
      '',
      `${i.polls} idle long polls: server RSS ${Math.round(i.rssBeforeMb)} → ${Math.round(i.rssDuringMb)} MB ` +
        `(+${Math.round(i.rssDuringMb - i.rssBeforeMb)} MB; target ≤ 100); send ${Math.round(i.sendQuietPerSec)} → ` +
        `${Math.round(i.sendDuringPerSec)} req/s (${((1 - i.sendDuringPerSec / i.sendQuietPerSec) * 100).toFixed(1)} % drop; target ≤ 10 %); ` +
        `server CPU per send ${Math.round(i.serverUsQuiet)} → ${Math.round(i.serverUsDuring)} µs; ` +
        `other work on the box ${i.foreignQuiet} % → ${i.foreignDuring} % of a core; ` +
        `${i.answers} poll answers during the window, ${i.pollErrors} failed polls${i.firstPollError ? ` (first: ${i.firstPollError})` : ''}`,
    );
  }
  return lines.join('\n');
}
