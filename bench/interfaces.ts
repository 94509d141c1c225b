// `npx tsx bench/interfaces.ts`: the agent interfaces beside the plain HTTP loop, on one
// server and database, one after the other:
//   sdk     SDK consume() vs the raw "pull carrying its acks" loop, msgs/s (target ≥ 0.9; bench/sdk-step.ts)
//   push    webhook push to a local receiver vs HTTP pull+ack, msgs/s (target ≥ 0.8)
//   latency at light load, commit (the message's created_at) → the receiver's 2xx, p50/p99 (target p99 < 50 ms)
//   mcp     check_inbox + ack_message over Streamable HTTP (/mcp) vs HTTP pull + ack, p50/p99
// The baselines are the main bench's pull step (bench/pull-ack.ts pullStep: prefilled, settled, warmed up).
// Settings: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (3),
// BENCH_CONSUMERS (16), BENCH_PULL_INBOXES (4), BENCH_BATCH (10), BENCH_BACKLOG (200 000),
// BENCH_LIGHT_RATE (20 msgs/s), BENCH_LIGHT_COUNT (400), BENCH_MCP_ROUNDS (500),
// BENCH_INTERFACES (sdk,push,latency,mcp).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { addAgent } from '../src/db/agents.js';
import { withCpu, cpuWindow, type CpuGroups } from './cpu.js';
import { settle, startPostgres } from './postgres.js';
import { prefillInboxes, pullStep } from './pull-ack.js';
import { percentile } from './loops.js';
import { besideLine } from './report.js';
import { sdkBesideRaw } from './sdk-step.js';
import { startServer } from './server.js';
import { DOMAIN, pullInbox, SENDER, TYPE } from './workload.js';
import { positiveInt, pullSettings } from './env.js';

const { seconds, warmupSeconds, consumers, pullInboxes: inboxCount, batch, backlog } = pullSettings(10);
const lightRate = positiveInt('BENCH_LIGHT_RATE', 20);
const lightCount = positiveInt('BENCH_LIGHT_COUNT', 400);
const mcpRounds = positiveInt('BENCH_MCP_ROUNDS', 500);
const only = new Set((process.env.BENCH_INTERFACES || 'sdk,push,latency,mcp').split(','));
const log = (line: string) => console.log(`# ${line}`);
const ms = (x: number) => x.toFixed(1);

/** A receiver that answers 204 at once and notes when each message arrived (no verification: the tests do that). */
async function startSink(onMessage: (body: string) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(204).end();
      onMessage(Buffer.concat(chunks).toString());
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const pg = await startPostgres(log);
const db = await pg.database('interfaces', { migrate: true });
let onMessage: (body: string) => void = () => undefined;
const sink = await startSink((b) => onMessage(b));
const server = await startServer(db.url, { ADMP_FETCH_ALLOW: '127.0.0.1' }, log);
const http = new Pool(server.url, { connections: 8 });
async function call<T>(token: string, method: 'GET' | 'POST' | 'DELETE', path: string, payload?: unknown): Promise<T> {
  const res = await http.request({
    method,
    path,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}
async function removeWebhooks(token: string): Promise<void> {
  const { endpoints } = await call<{ endpoints: { id: string }[] }>(token, 'GET', '/v1/webhooks');
  for (const e of endpoints) await call(token, 'DELETE', `/v1/webhooks/${e.id}`);
}
const results: string[] = [];
try {
  const inboxes = await Promise.all(
    Array.from({ length: inboxCount }, (_, i) => addAgent(db.pool, pullInbox(i), DOMAIN)),
  );
  const names = inboxes.map((_, i) => pullInbox(i));
  const sender = await addAgent(db.pool, SENDER, DOMAIN);
  const step = { inboxes, consumers, backlog, batch, seconds, warmupSeconds };
  const cpu: CpuGroups = { postgres: await pg.postmasterPid(), server: server.pid, bench: process.pid };
  const clear = () => db.pool.query("DELETE FROM message WHERE status IN ('acked', 'leased', 'delivered')");

  if (only.has('sdk')) results.push(await sdkBesideRaw({ url: server.url, pool: db.pool, ...step, log, cpu }));

  if (only.has('push')) {
    await clear();
    log(
      `HTTP pull+ack: ${backlog} messages prefilled into ${inboxCount} inboxes, ${consumers} consumers, batch ${batch}`,
    );
    const {
      result: { result: pull, cpu: pullCpu },
    } = await pullStep(db.pool, server.url, step, (run) => withCpu(cpu, run));
    log(`HTTP pull+ack: ${pull.perSec.toFixed(0)} msgs/s`);

    await clear();
    await prefillInboxes(db.pool, names, backlog);
    await settle(db.pool, ['message']);
    let received = 0;
    onMessage = () => void received++;
    // One endpoint per inbox; the worker finds them at its next poll (within a second).
    for (const inbox of inboxes) await call(inbox.token, 'POST', '/v1/webhooks', { url: `${sink.url}/push` });
    const firstBy = Date.now() + 10_000;
    while (received === 0 && Date.now() < firstBy) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
    const from = received;
    const started = performance.now();
    const closeCpu = cpuWindow(cpu);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const pushCpu = closeCpu();
    const push = (received - from) / ((performance.now() - started) / 1000);
    const { rows } = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM message WHERE status IN ('delivered', 'leased')",
    );
    log(`webhook push: ${push.toFixed(0)} msgs/s (${rows[0]!.n} still waiting at the end)`);
    if (rows[0]!.n === 0) log('webhook push: the backlog ran dry before the time was up (raise BENCH_BACKLOG)');
    results.push(besideLine('push', push, pushCpu, 'HTTP pull+ack', pull.perSec, pullCpu, 0.8));
    for (const inbox of inboxes) await removeWebhooks(inbox.token);
    await new Promise((r) => setTimeout(r, 1000)); // the deliveries in flight finish and their acks land
    await clear();
    await settle(db.pool, ['message']);
  }

  if (only.has('latency')) {
    // Light load: one message every 1/rate s, each sent alone; latency from its commit to the 2xx.
    const target = inboxes[0]!;
    await call(target.token, 'POST', '/v1/webhooks', { url: `${sink.url}/light` });
    const latencies: number[] = [];
    onMessage = (b) => {
      const { data } = JSON.parse(b) as { data: { created_at: string } };
      latencies.push(Date.now() - Date.parse(data.created_at));
    };
    await new Promise((r) => setTimeout(r, 1500)); // the worker's next poll finds the endpoint
    for (let i = 0; i < lightCount; i++) {
      await call(sender.token, 'POST', '/v1/messages', { to: `${pullInbox(0)}@${DOMAIN}`, type: TYPE, body: { i } });
      await new Promise((r) => setTimeout(r, 1000 / lightRate));
    }
    const end = Date.now() + 5000;
    while (latencies.length < lightCount && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const sorted = [...latencies].sort((a, b) => a - b);
    results.push(
      `push latency at ${lightRate} msgs/s, commit → receiver 2xx: p50 ${percentile(sorted, 50)} ms, p99 ${percentile(sorted, 99)} ms over ${sorted.length} messages (target p99 < 50 ms)`,
    );
    await removeWebhooks(target.token);
  }

  if (only.has('mcp')) {
    const agent = inboxes[inboxCount - 1]!;
    await db.pool.query('DELETE FROM message WHERE to_agent_id = $1', [pullInbox(inboxCount - 1)]);
    await prefillInboxes(db.pool, [pullInbox(inboxCount - 1)], 3 * mcpRounds + 100);
    await settle(db.pool, ['message']);
    // A tenth of the rounds first, not counted (JIT, connections, the statements' plans).
    const warm = Math.ceil(mcpRounds / 10);
    const plain: number[] = [];
    for (let i = 0; i < warm + mcpRounds; i++) {
      const t0 = performance.now();
      const { messages } = await call<{ messages: { id: string; lease_id: string }[] }>(
        agent.token,
        'POST',
        '/v1/inbox/pull',
        { max: 1 },
      );
      await call(agent.token, 'POST', `/v1/messages/${messages[0]!.id}/ack`, { lease_id: messages[0]!.lease_id });
      if (i >= warm) plain.push(performance.now() - t0);
    }
    const client = new Client({ name: 'admp-bench', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', server.url), {
        requestInit: { headers: { authorization: `Bearer ${agent.token}` } },
      }),
    );
    const viaMcp: number[] = [];
    for (let i = 0; i < warm + mcpRounds; i++) {
      const t0 = performance.now();
      const r = await client.callTool({ name: 'check_inbox', arguments: { max: 1 } });
      const m = (r.structuredContent as { messages: { id: string; lease_id: string }[] }).messages[0]!;
      const a = await client.callTool({ name: 'ack_message', arguments: { message_id: m.id, lease_id: m.lease_id } });
      if (a.isError) throw new Error(`ack_message: ${JSON.stringify(a.content)}`);
      if (i >= warm) viaMcp.push(performance.now() - t0);
    }
    await client.close();
    const p = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return `p50 ${ms(percentile(s, 50))} ms, p99 ${ms(percentile(s, 99))} ms`;
    };
    results.push(
      `MCP check_inbox + ack_message over Streamable HTTP: ${p(viaMcp)}; HTTP pull + ack: ${p(plain)} (${mcpRounds} rounds each)`,
    );
  }
  for (const r of results) console.log(r);
} finally {
  await http.close();
  await server.stop();
  sink.server.closeAllConnections();
  sink.server.close();
  await db.drop();
  await pg.stop();
}
