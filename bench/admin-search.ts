// `npx tsx bench/admin-search.ts`: the admin API's message search over a large
// message table (1,000,000 rows by default), p50/p95/max per documented filter,
// through GET /admin/v1/messages (app.inject: routing, admin-token check, validation,
// the query, serialisation), and EXPLAIN of the same statement under the pool's
// plan_cache_mode (generic plans), naming the index each filter uses. Target (the
// console issue): p95 < 200 ms for every filter. Settings: bench/README.md.
import { randomInt } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { wire } from '../src/app/server.js';
import { createAdminToken } from '../src/db/admin-tokens.js';
import { searchQuery, type SearchFilter } from '../src/db/message-search.js';
import { startPostgres } from './postgres.js';
import { writeResults } from './report.js';
import { positiveInt } from './env.js';

const ROWS = positiveInt('BENCH_SEARCH_ROWS', 1_000_000);
const QUERIES = positiveInt('BENCH_SEARCH_QUERIES', 100);
const AGENTS = 1000;
const SENDERS = 2000;
const DAYS = 30;
const CHUNK = 100_000;

const log = (line: string) => console.log(`[search] ${line}`);

// Rows written straight into message and message_search (this measures reads, not enqueue): 1,000 inboxes,
// 2,000 senders, 5 % mail, a status mix like a queue that has run a while (70 % acked,
// 20 % delivered, 2 % leased, 1 % dead, 1 % failed, 1 % queued…), three messages per
// correlation id (10 % without one), spread evenly over 30 days in creation order.
const FILL = `
INSERT INTO message (to_agent_id, channel, from_agent, type, body, correlation_id, status, lease_id, lease_until,
                     ttl_sec, created_at, expires_at)
SELECT 'a' || ((i * 7919) % ${AGENTS}),
       CASE WHEN i % 20 = 0 THEN 'smtp' ELSE 'http' END::message_channel,
       's' || ((i * 104729) % ${SENDERS}) || '@agents.partner.example',
       'task.request', '{}'::jsonb,
       CASE WHEN i % 10 = 9 THEN NULL ELSE 'corr-' || (i / 3) END,
       st.s, CASE WHEN st.s = 'leased' THEN gen_random_uuid() END,
       CASE WHEN st.s = 'leased' THEN now() + interval '1 day' END,
       ${DAYS * 2} * 86400,
       now() - interval '${DAYS} days' + (i::float8 / $2) * interval '${DAYS} days',
       now() + interval '${DAYS} days'
  FROM generate_series($1::bigint, $1::bigint + ${CHUNK} - 1) AS i
 CROSS JOIN LATERAL (SELECT (CASE WHEN i % 100 = 0 THEN 'dead' WHEN i % 100 IN (1, 2) THEN 'leased'
                                   WHEN i % 100 = 3 THEN 'failed' WHEN i % 100 = 4 THEN 'queued'
                                   WHEN i % 100 < 25 THEN 'delivered' ELSE 'acked' END)::message_status AS s) st
 WHERE i < $2`;

type Case = { name: string; filter: () => Omit<SearchFilter, 'limit' | 'from'>; page2?: boolean };
const any = (n: number) => randomInt(n);
const hourAgo = (h: number) => new Date(Date.now() - h * 3600_000);
const CASES: Case[] = [
  { name: 'agent', filter: () => ({ agent: `a${any(AGENTS)}` }) },
  { name: 'agent, page 2 (cursor)', filter: () => ({ agent: `a${any(AGENTS)}` }), page2: true },
  { name: 'status=delivered (20 %)', filter: () => ({ status: 'delivered' }) },
  { name: 'status=dead (1 %)', filter: () => ({ status: 'dead' }) },
  { name: 'channel=smtp (5 %)', filter: () => ({ channel: 'smtp' }) },
  { name: 'sender', filter: () => ({ sender: `s${any(SENDERS)}@agents.partner.example` }) },
  { name: 'correlation id', filter: () => ({ correlation_id: `corr-${any(Math.floor(ROWS / 3))}` }) },
  {
    name: 'time range (1 h)',
    filter: () => {
      const h = 1 + any(DAYS * 24 - 1);
      return { after: hourAgo(h + 1), before: hourAgo(h) };
    },
  },
  {
    name: 'agent + status + 1 day',
    filter: () => {
      const d = any(DAYS - 1);
      return { agent: `a${any(AGENTS)}`, status: 'acked', after: hourAgo(24 * (d + 1)), before: hourAgo(24 * d) };
    },
  },
  { name: 'no filter (newest)', filter: () => ({}) },
];

const toQuery = (f: Omit<SearchFilter, 'limit' | 'from'>, cursor?: string) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) p.set(k, v instanceof Date ? v.toISOString() : String(v));
  if (cursor) p.set('cursor', cursor);
  p.set('limit', '50');
  return p.toString();
};

const percentile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.ceil(q * xs.length) - 1]!;

/** Index names in a JSON plan, and whether any node scans the whole table. */
function planSummary(plan: Record<string, unknown>): { indexes: string[]; seqScan: boolean } {
  const out = { indexes: [] as string[], seqScan: false };
  const walk = (n: Record<string, unknown>) => {
    if (typeof n['Index Name'] === 'string') out.indexes.push(n['Index Name']);
    if (n['Node Type'] === 'Seq Scan') out.seqScan = true;
    for (const c of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(c);
  };
  walk(plan);
  return out;
}

const pg = await startPostgres(log);
try {
  const db = await pg.database('search', { migrate: true });
  const started = Date.now();
  for (let at = 0; at < ROWS; at += CHUNK) {
    await db.pool.query(FILL, [at, ROWS]);
    log(`filled ${Math.min(ROWS, at + CHUNK)} / ${ROWS}`);
  }
  // Their search entries, as enqueue_message writes them (migrations/0019_message_search_table.sql).
  await db.pool.query(
    'INSERT INTO message_search (created_at, to_agent_id, id, from_agent, correlation_id) ' +
      'SELECT created_at, to_agent_id, id, from_agent, correlation_id FROM message',
  );
  await db.pool.query('VACUUM ANALYZE message');
  await db.pool.query('VACUUM ANALYZE message_search');
  log(`fill + VACUUM ANALYZE: ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const config = loadConfig({
    DATABASE_URL: db.url,
    ADMP_LOG_LEVEL: 'silent',
    ADMP_LMTP_LISTEN: '',
    ADMP_METRICS_REFRESH_MS: '3600000',
  });
  const core = await wire(config, db, createLogger('silent'));
  const admin = await createAdminToken(db.pool, 'bench', true);
  const get = async (query: string) => {
    const t0 = performance.now();
    const r = await core.app.inject({
      url: `/admin/v1/messages?${query}`,
      headers: { authorization: `Bearer ${admin.token}` },
    });
    const ms = performance.now() - t0;
    if (r.statusCode !== 200) throw new Error(`${query}: ${r.statusCode} ${r.body}`);
    return { ms, body: r.json() as { messages: unknown[]; next_cursor: string | null } };
  };

  const results = [];
  const client = await db.pool.connect();
  try {
    for (const c of CASES) {
      // EXPLAIN the statement as the pool runs it: a prepared statement under plan_cache_mode=force_generic_plan.
      const q = searchQuery({ ...c.filter(), limit: 50 });
      await client.query(`PREPARE bench_search AS ${q.text}`);
      const args = q.values.map((v) => client.escapeLiteral(v instanceof Date ? v.toISOString() : String(v)));
      const explained = await client.query(`EXPLAIN (FORMAT JSON) EXECUTE bench_search(${args.join(', ')})`);
      await client.query('DEALLOCATE bench_search');
      const plan = planSummary((explained.rows[0]['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);

      for (let i = 0; i < 5; i++) await get(toQuery(c.filter())); // warm the plan caches
      const times: number[] = [];
      let returned = 0;
      for (let i = 0; i < QUERIES; i++) {
        const f = c.filter();
        if (c.page2) {
          const first = await get(toQuery(f));
          if (!first.body.next_cursor) continue;
          const second = await get(toQuery(f, first.body.next_cursor));
          times.push(second.ms);
          returned += second.body.messages.length;
        } else {
          const r = await get(toQuery(f));
          times.push(r.ms);
          returned += r.body.messages.length;
        }
      }
      if (times.length === 0) {
        // A small table (a smoke run) may give no inbox a second page of 50.
        log(`${c.name.padEnd(26)} no answer to time at ${ROWS} rows`);
        continue;
      }
      const row = {
        filter: c.name,
        p50_ms: percentile(times, 0.5),
        p95_ms: percentile(times, 0.95),
        max_ms: Math.max(...times),
        rows_per_answer: returned / times.length,
        indexes: [...new Set(plan.indexes)],
        seq_scan: plan.seqScan,
        met: percentile(times, 0.95) < 200 && !plan.seqScan,
      };
      results.push(row);
      log(
        `${c.name.padEnd(26)} p50 ${row.p50_ms.toFixed(1).padStart(6)} ms  p95 ${row.p95_ms.toFixed(1).padStart(6)} ms  max ${row.max_ms.toFixed(1).padStart(6)} ms  ${row.rows_per_answer.toFixed(0).padStart(2)} rows  ${row.indexes.join(', ') || '(no index)'}${plan.seqScan ? '  SEQ SCAN' : ''}`,
      );
    }
  } finally {
    client.release();
  }
  await core.stop();
  console.log('\n| filter | p50 ms | p95 ms | max ms | index (EXPLAIN) | p95 < 200 ms, no seq scan |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results)
    console.log(
      `| ${r.filter} | ${r.p50_ms.toFixed(1)} | ${r.p95_ms.toFixed(1)} | ${r.max_ms.toFixed(1)} | ${r.indexes.join(', ')} | ${r.met ? 'yes' : 'NO'} |`,
    );
  log(`results: ${writeResults({ bench: 'admin-search', rows: ROWS, queries: QUERIES, results })}`);
  await db.drop();
} finally {
  await pg.stop();
}
