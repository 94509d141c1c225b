// What held under the outside fault-injection run, kept at CI size: a real `admp serve`
// under load (2,000 HTTP sends and 500 LMTP mails per scenario, retried as agents and MTAs
// retry) while it is SIGKILLed and restarted, while its PostgreSQL restarts, and while it
// is stopped by SIGTERM; and competing consumers that crash and ack late. Each asserts
// nothing lost, nothing stored or acked twice, and no permanent refusal for our fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startEmbedded, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { createPool } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { addAgent } from '../../src/db/agents.js';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { agentMail, signer, trust } from '../helpers/agent-mail.js';
import { serve, ready, until, type Proc } from '../helpers/serve-process.js';
import { startLoad, storedOnce, type LoadResult } from '../helpers/fault-load.js';

const SENDS = 2000;
const MAILS = 500;
const MTA = 'mx.agents.test';
const PARTNER = 'agents.partner.example';

interface World {
  readonly pool: pg.Pool;
  readonly env: Record<string, string>;
  readonly httpPort: number;
  readonly lmtpPort: number;
  readonly alice: { token: string };
  readonly mails: Buffer[];
  readonly mailFrom: string;
}

/** Agents alice (sends) and bob (receives), a partner whose signed mail policy admits, 500 mails to bob. */
async function world(url: string, pool: pg.Pool): Promise<World> {
  const alice = await addAgent(pool, 'alice', 'agents.test');
  await addAgent(pool, 'bob', 'agents.test');
  const partner = signer(`worker@${PARTNER}`);
  await trust(pool, partner);
  await pool.query(`INSERT INTO policy_rule (from_glob, to_glob, action) VALUES ($1, '*@agents.test', 'allow')`, [
    `*@${PARTNER}`,
  ]);
  // Our MTA's verdict on top, as Postfix + rspamd write it on the LMTP road.
  const ar = `Authentication-Results: ${MTA}; dkim=pass header.d=${PARTNER} header.s=s1 header.b=abc\r\n`;
  const mails = await Promise.all(
    Array.from({ length: MAILS }, async (_, m) =>
      Buffer.concat([
        Buffer.from(ar),
        await agentMail(partner, { to: 'bob@agents.test', type: 'load.mail', body: { m } }),
      ]),
    ),
  );
  const [httpPort, lmtpPort] = [await freePort(), await freePort()];
  return {
    pool,
    httpPort,
    lmtpPort,
    alice,
    mails,
    mailFrom: partner.agent,
    env: {
      DATABASE_URL: url,
      ADMP_DOMAINS: 'agents.test',
      ADMP_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      ADMP_LMTP_LISTEN: `127.0.0.1:${lmtpPort}`,
      ADMP_METRICS_LISTEN: '',
      ADMP_MTA_HOSTNAME: MTA,
      ADMP_API_RATE_LIMIT: '0',
      ADMP_LOG_LEVEL: 'warn',
      ADMP_SHUTDOWN_GRACE_MS: '3000',
    },
  };
}

function load(w: World) {
  return startLoad(
    { httpPort: w.httpPort, lmtpPort: w.lmtpPort, token: w.alice.token, to: 'bob@agents.test' },
    { sends: SENDS, mails: w.mails, mailFrom: w.mailFrom },
  );
}

type T = { after(fn: () => void): void; diagnostic(message: string): void };

async function start(w: World, t: T): Promise<Proc> {
  const started = Date.now();
  const p = serve(w.env, t);
  await until('ready', async () => (await ready(w.httpPort)) || p.child.exitCode !== null);
  assert.equal(p.child.exitCode, null, p.output());
  t.diagnostic(`admp serve ready in ${Date.now() - started} ms`);
  return p;
}

/** 0 lost, 0 duplicated, 0 permanent refusals, no server error; the fault was felt (something was retried). */
async function assertNothingLost(w: World, r: LoadResult, t: T): Promise<void> {
  t.diagnostic(`load done; ${r.retried} answers were temporary or cut off, and retried`);
  assert.deepEqual(r.serverErrors, [], 'no 500, no reply without a code');
  assert.deepEqual(r.permanent, [], 'no permanent refusal for our fault');
  const s = await storedOnce(w.pool, 'bob', SENDS, MAILS);
  assert.deepEqual(s.missing, [], 'nothing lost');
  assert.deepEqual(s.doubled, [], 'nothing stored twice');
  assert.equal(s.rows, SENDS + MAILS);
  assert.ok(r.retried > 0, 'the fault hit the load');
}

/**
 * A server on a fresh database under load, sent `signal` when a third of the load is done
 * and started again once it has exited; the load is then finished and checked.
 */
async function signalledUnderLoad(t: T, signal: NodeJS.Signals): Promise<Proc> {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const w = await world(db.url, db.pool);
  const first = await start(w, t);
  const l = load(w);
  await until('a third of the load', () => l.done() >= (SENDS + MAILS) / 3);
  first.child.kill(signal);
  await first.exited;
  const second = await start(w, t);
  await assertNothingLost(w, await l.finished, t);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.output());
  return first;
}

test('server SIGKILL and restart under load: 0 lost, 0 duplicated, 0 permanent refusals', async (t) => {
  const killed = await signalledUnderLoad(t, 'SIGKILL');
  assert.equal(killed.child.signalCode, 'SIGKILL');
});

test('PostgreSQL restart under load: the server recovers by itself, 0 lost, 0 duplicated', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'admp-pg-restart-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root
  const dataDir = join(dir, 'pg');
  const port = await freePort();
  const boot = () => startEmbedded({ dataDir, port, settings: ['fsync=off'] });
  let pgServer: EmbeddedDatabase = await boot();
  const pool = createPool(pgServer.url, 4);
  pool.on('error', () => undefined); // its idle clients are ended by the restart
  // One hook, in order (node:test runs after-hooks first-in first-out).
  t.after(async () => {
    await pool.end().catch(() => undefined);
    await pgServer.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await migrate(pool);
  const w = await world(pgServer.url, pool);
  const server = await start(w, t);
  const l = load(w);
  await until('a third of the load', () => l.done() >= (SENDS + MAILS) / 3);
  await pgServer.stop();
  await sleep(1000);
  pgServer = await boot();
  const r = await l.finished;
  assert.equal(server.child.exitCode, null, `the server kept running:\n${server.output()}`);
  await until('ready again', () => ready(w.httpPort), 15_000);
  await assertNothingLost(w, r, t);
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, server.output());
});

test('SIGTERM mid-load: a clean exit, in-flight work answered, the restart takes the rest; 0 lost, 0 duplicated', async (t) => {
  const stopped = await signalledUnderLoad(t, 'SIGTERM');
  assert.equal(stopped.child.exitCode, 0, stopped.output());
  assert.doesNotMatch(stopped.output(), /"level":(50|60)/, 'no error-level line while draining');
});

interface Lease {
  consumer: number;
  leaseId: string;
  leaseUntil: number;
  /** When the pull that handed it out answered (this machine's clock, as the server's). */
  pulledAt: number;
}

test('competing consumers with crashes and late acks: every message acked once, never two leases at once', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const w = await world(db.url, db.pool);
  // Enough attempts that redeliveries after crashes never make a message dead.
  w.env.ADMP_MAX_ATTEMPTS = '100';
  w.env.ADMP_RECLAIM_INTERVAL_MS = '200';
  const carol = await addAgent(db.pool, 'carol', 'agents.test');
  const server = await start(w, t);
  const sent = await startLoad(
    { httpPort: w.httpPort, lmtpPort: w.lmtpPort, token: w.alice.token, to: 'carol@agents.test' },
    { sends: SENDS, mails: [], mailFrom: w.mailFrom },
  ).finished;
  assert.deepEqual([sent.permanent, sent.serverErrors], [[], []]);

  const base = `http://127.0.0.1:${w.httpPort}`;
  const call = async (path: string, body: object) => {
    const r = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, json: (await r.json()) as any };
  };
  const leases = new Map<string, Lease[]>();
  const acked = new Map<string, number>(); // message id → successful acks
  let crashes = 0;
  let late = 0;
  let conflicts = 0;
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

  const consumer = async (n: number) => {
    for (let idle = 0; idle < 3;) {
      const pulled = await call('/v1/inbox/pull', { max: 20, visibility_timeout: 1, wait: 1 });
      assert.equal(pulled.status, 200, JSON.stringify(pulled.json));
      const batch = pulled.json.messages as { id: string; lease_id: string; lease_until: string }[];
      if (batch.length === 0) {
        idle++;
        continue;
      }
      idle = 0;
      const pulledAt = Date.now();
      for (const m of batch) {
        const l = { consumer: n, leaseId: m.lease_id, leaseUntil: Date.parse(m.lease_until), pulledAt };
        leases.set(m.id, [...(leases.get(m.id) ?? []), l]);
      }
      const dice = random();
      if (dice < 0.08) {
        crashes++; // the consumer dies holding its batch: the leases run out, others take them
        continue;
      }
      if (dice < 0.2) {
        late++; // handling took longer than the lease (1 s): another consumer may have it now
        await sleep(2500);
      }
      const r = await call('/v1/messages/ack', { items: batch.map((m) => ({ id: m.id, lease_id: m.lease_id })) });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      for (const x of r.json.results as { id: string; outcome: string }[]) {
        if (x.outcome === 'acked') acked.set(x.id, (acked.get(x.id) ?? 0) + 1);
        else if (x.outcome === 'lease_conflict') conflicts++;
        else assert.fail(`ack of ${x.id}: ${x.outcome}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, (_, n) => consumer(n)));

  const { rows } = await db.pool.query<{ id: string; status: string }>(
    "SELECT id, status::text FROM message WHERE to_agent_id = 'carol'",
  );
  assert.equal(rows.length, SENDS);
  assert.deepEqual(
    rows.filter((r) => r.status !== 'acked'),
    [],
    'every message acked: none lost, none dead',
  );
  assert.deepEqual(
    [...acked].filter(([, n]) => n !== 1),
    [],
    'no message acked twice',
  );
  assert.equal(acked.size, SENDS);
  // A message is handed out again only after the lease before it ran out.
  for (const [id, ls] of leases) {
    ls.sort((a, b) => a.pulledAt - b.pulledAt);
    for (let i = 1; i < ls.length; i++)
      assert.ok(ls[i]!.pulledAt >= ls[i - 1]!.leaseUntil, `${id} held by two leases at once`);
  }
  t.diagnostic(`${crashes} consumer crashes, ${late} late batches, ${conflicts} late acks refused (lease_conflict)`);
  assert.ok(crashes > 0 && late > 0 && conflicts > 0, 'the faults happened');
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, server.output());
});
