// Ingest throughput per message (parse + domain auth + agent signature + policy +
// enqueue) on both mail roads: POST /ingress/rspamd trusting Rspamd's DKIM verdict or
// re-verifying DKIM (ADMP_DKIM_MODE=verify, through a loopback DNS server), and the
// LMTP receiver trusting our MTA's Authentication-Results; 5 KB and 100 KB partner
// mail; `admp serve` with each ADMP_WORKERS of the settings. Targets of the issue:
// ≥ 2,000 msgs/s (5 KB, trusting Rspamd) and ≥ 800 msgs/s (DKIM re-verified).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addAgent } from '../src/db/agents.js';
import { freePort } from '../src/db/embedded.js';
import { pinPartnerKey } from '../src/db/keys.js';
import { addRule } from '../src/db/policy-rules.js';
import { startDns } from '../test/helpers/dns.js';
import { lmtpSend } from '../test/helpers/lmtp-client.js';
import { cpuWindow, type CpuGroups, type CpuReport } from './cpu.js';
import {
  AUTHENTICATION_RESULTS,
  INGEST_RECIPIENT,
  mailSet,
  message,
  MTA_HOSTNAME,
  partner,
  PARTNER_DOMAIN,
  RECIPIENT_ADDRESS,
  RSPAMD_AUTH,
  type MailSet,
  type Partner,
} from './ingest-mail.js';
import { lmtpIngest } from './ingest-lmtp.js';
import { idleConnectionsRss, postfixLmtpIngest, smtpEdgeIngest, smtpEdgeSendOnce } from './ingest-smtp.js';
import { createTestCa, type TestCa } from '../test/helpers/test-ca.js';
import { startPostfix, type TestPostfix } from '../test/helpers/postfix.js';
import { rspamdIngest } from './ingest-rspamd.js';
import { commitStats, rowsPerCommit, settle, type BenchDatabase, type BenchPostgres } from './postgres.js';
import type { Measurement, Target } from './report.js';
import { startServer } from './server.js';
import { DOMAIN } from './workload.js';
import { ACTIVE_QUOTA_KEYS, quotaPolicyFile, seedQuotaKeys } from './quota.js';

export interface IngestSettings {
  /** The measured time of each case, split into `rounds` windows. */
  readonly seconds: number;
  /** The shortest warm-up; it goes on while the rate still rises (see `warmUp`). */
  readonly warmupSeconds: number;
  /** Windows per case; the case's figure is the median window's (by rate). */
  readonly rounds: number;
  /** HTTP connections on the Rspamd road; LMTP sessions on the other. */
  readonly connections: number;
  readonly poolMax: number;
  /** ADMP_WORKERS values to run; 100 KB mail is measured with the first only. */
  readonly workers: readonly number[];
  /**
   * Runs only the cases whose label contains this text, or one of its `|`-separated
   * parts (e.g. `DKIM re-verified, 5 KB` or `trusting Rspamd, 5 KB|SMTP edge|Postfix`).
   */
  readonly only?: string;
  /** Also the first Rspamd case with rate quotas counting every mail (BENCH_ONLY step `ingest-quota`). */
  readonly quota?: boolean;
}

export interface IngestDeps {
  readonly pg: BenchPostgres;
  readonly log: (line: string) => void;
  /**
   * Runs `fn` in a CPU window (after waiting for a quiet box) with `server` as the server's
   * process tree, and `extra` trees of the measured system (Postfix) beside it.
   */
  readonly measured: <T>(
    server: number,
    fn: () => Promise<T>,
    extra?: CpuGroups,
  ) => Promise<{ result: T; cpu: CpuReport }>;
  readonly cleanups: (() => Promise<void>)[];
  readonly serverRoot?: string;
}

type Road = 'rspamd' | 'lmtp' | 'smtp' | 'postfix';
type DkimMode = 'trust' | 'verify';
interface Case {
  readonly road: Road;
  readonly bytes: number;
}

const SIZES = { '5 KB': 5_000, '100 KB': 100_000 } as const;
const sizeName = (bytes: number) => (bytes === SIZES['5 KB'] ? '5 KB' : '100 KB');
// Unique messages a warm-up may use up before it starts deduplicating. The window's
// set is sized from the warm-up's rate, which a cold server understates, so never
// below this rate either.
const WARMUP_RATE = { [SIZES['5 KB']]: 5000, [SIZES['100 KB']]: 1500 } as Record<number, number>;
const WINDOW_HEADROOM = 1.5;
const MIN_ROUND_SECONDS = 2;
// The warm-up goes on in slices while the server's CPU per message still falls by more than this, up to the cap.
const WARMUP_SLICE_SECONDS = 2;
const WARMUP_FALL = 0.05;
const WARMUP_MAX_SECONDS = 30;

export const INGEST_TARGETS = [
  { road: 'rspamd', mode: 'trust', bytes: SIZES['5 KB'], workers: 2, min: 2000, what: 'trusting Rspamd' },
  { road: 'rspamd', mode: 'verify', bytes: SIZES['5 KB'], workers: 2, min: 800, what: 'DKIM re-verified' },
  { road: 'smtp', mode: 'trust', bytes: SIZES['5 KB'], workers: 2, min: 600, what: 'SMTP edge' },
] as const;

const ROAD_NAMES: Record<Road, string> = {
  rspamd: '/ingress/rspamd',
  lmtp: 'LMTP trusting MTA A-R',
  smtp: 'SMTP edge, STARTTLS + SPF/DKIM/DMARC/ARC',
  postfix: 'Postfix → LMTP (plain, trusting its A-R)',
};

/** The case the rate quota case is compared with: its label, as BENCH_INGEST_CASES matches it. */
export const quotaBaselineLabel = (workers: number): string => label('rspamd', 'trust', SIZES['5 KB'], workers);

const label = (road: Road, mode: DkimMode, bytes: number, workers: number) =>
  `ingest ${ROAD_NAMES[road]}${road === 'rspamd' ? (mode === 'trust' ? ' trusting Rspamd' : ' DKIM re-verified') : ''}, ${sizeName(bytes)} (${workers} worker${workers > 1 ? 's' : ''})`;

/**
 * The cases one server runs: LMTP only where the verdict is trusted (its DKIM
 * re-verification is the same code as the Rspamd road's); the SMTP edge verifies
 * everything itself whatever ADMP_DKIM_MODE, and is compared on 5 KB mail with a plain
 * Postfix → LMTP delivery of the same mail.
 */
function cases(mode: DkimMode, withLarge: boolean): Case[] {
  const sizes = withLarge ? [SIZES['5 KB'], SIZES['100 KB']] : [SIZES['5 KB']];
  if (mode === 'verify') return sizes.map((bytes) => ({ road: 'rspamd', bytes }));
  return [
    ...(['rspamd', 'lmtp'] as const).flatMap((road) => sizes.map((bytes) => ({ road, bytes }))),
    { road: 'smtp', bytes: SIZES['5 KB'] },
    { road: 'postfix', bytes: SIZES['5 KB'] },
  ];
}

/** The edge's name and its certificate from a throwaway CA, trusted by the bench's client. */
export const EDGE_HOSTNAME = 'mx.agents.bench';
const IDLE_CONNECTIONS = 1000;

export async function ingestBench(
  deps: IngestDeps,
  s: IngestSettings,
): Promise<{ measurements: Measurement[]; targets: Target[] }> {
  const { log } = deps;
  const db = await deps.pg.database('ingest', { migrate: true });
  deps.cleanups.push(() => db.close());
  await addAgent(db.pool, INGEST_RECIPIENT, DOMAIN);
  const p: Partner = partner();
  await pinPartnerKey(db.pool, { agent: p.signer.agent, kid: p.signer.kid, publicKey: p.signer.publicKey });
  await addRule(db.pool, { from: `*@${PARTNER_DOMAIN}`, to: `*@${DOMAIN}`, action: 'allow' });
  // The edge checks SPF (the bench connects from 127.0.0.1) and DMARC too.
  const dns = await startDns({
    txt: {
      [p.dkim.dnsName]: p.dkim.txt,
      [PARTNER_DOMAIN]: 'v=spf1 ip4:127.0.0.1 -all',
      [`_dmarc.${PARTNER_DOMAIN}`]: 'v=DMARC1; p=reject',
    },
  });
  deps.cleanups.push(() => dns.stop());
  const ca = await createTestCa();
  deps.cleanups.push(async () => ca.remove());
  const cert = await ca.issue(EDGE_HOSTNAME);
  const token = randomBytes(24).toString('base64url');
  log(
    `ingest: partner ${p.signer.agent} (pinned Ed25519 key), DKIM rsa-2048 ${p.dkim.dnsName} served by a loopback DNS server on ${dns.server}`,
  );

  const serverEnvFor = (workers: number, mode: DkimMode, lmtpPort: number, smtpPort: number) => ({
    ADMP_SMTP_LISTEN: `127.0.0.1:${smtpPort}`,
    ADMP_SMTP_HOSTNAME: EDGE_HOSTNAME,
    ADMP_SMTP_TLS_CERT: cert.cert,
    ADMP_SMTP_TLS_KEY: cert.key,
    // Every session comes from 127.0.0.1: the per-address limits would measure themselves.
    ADMP_SMTP_MAX_CONNECTIONS: String(IDLE_CONNECTIONS * 2),
    ADMP_SMTP_MAX_CONNECTIONS_PER_IP: String(IDLE_CONNECTIONS * 2),
    ADMP_SMTP_RATE_CONNECTIONS: '10000000',
    ADMP_SMTP_RATE_MESSAGES: '10000000',
    ADMP_WORKERS: String(workers),
    ADMP_DKIM_MODE: mode,
    ADMP_DNS_SERVERS: dns.server,
    ADMP_INGRESS_TOKEN: token,
    ADMP_MIGRATE_ON_START: 'false',
    ADMP_MTA_HOSTNAME: MTA_HOSTNAME,
    ADMP_LMTP_LISTEN: `127.0.0.1:${lmtpPort}`,
    ADMP_PG_POOL_MAX: String(s.poolMax),
  });

  const parts = (s.only ?? '').split('|');
  const wanted = (name: string) => parts.some((p) => name.includes(p));
  const measurements: Measurement[] = [];
  const byCase = new Map<string, Measurement>();
  let quotaTarget: Target | undefined;
  for (const [wi, workers] of s.workers.entries()) {
    for (const mode of ['trust', 'verify'] as const) {
      const todo = cases(mode, wi === 0).filter((c) => wanted(label(c.road, mode, c.bytes, workers)));
      if (todo.length === 0) continue;
      const lmtpPort = await freePort();
      const smtpPort = await freePort();
      const env = serverEnvFor(workers, mode, lmtpPort, smtpPort);
      log(`ingest: starting admp serve with ADMP_WORKERS=${workers} ADMP_DKIM_MODE=${mode} (LMTP on ${lmtpPort})`);
      const server = await startServer(db.url, env, log, deps.serverRoot);
      let postfix: TestPostfix | undefined;
      try {
        if (todo.some((c) => c.road === 'postfix'))
          postfix = await startPostfix({
            milter: null,
            relayDomains: [DOMAIN],
            transport: { [DOMAIN]: `lmtp:inet:127.0.0.1:${lmtpPort}` },
            main: { lmtp_destination_concurrency_limit: String(s.connections), queue_run_delay: '1s' },
          });
        for (const c of todo) {
          const m = await measureCase(
            deps,
            s,
            {
              db,
              p,
              token,
              serverUrl: server.url,
              serverPid: server.pid,
              lmtpPort,
              smtpPort,
              ca,
              ...(postfix ? { postfixPort: postfix.port, postfixPid: postfixMasterPid(postfix.dir) } : {}),
            },
            c,
            mode,
            workers,
          );
          if (c.road === 'smtp') {
            const rss = await idleConnectionsRss(smtpPort, server.pid, IDLE_CONNECTIONS);
            const growth = (rss.afterKb - rss.beforeKb) / 1024;
            m.notes.push(
              `${rss.connections} idle connections: server RSS ${Math.round(rss.beforeKb / 1024)} → ${Math.round(rss.afterKb / 1024)} MB (+${growth.toFixed(1)} MB; target < 200 MB)`,
            );
            log(`${m.label}: ${m.notes.at(-1)}`);
          }
          measurements.push(m);
          byCase.set(`${c.road}/${mode}/${c.bytes}/${workers}`, m);
        }
      } finally {
        await postfix?.stop();
        await server.stop();
      }
    }
  }
  if (s.quota) {
    // The first case again (/ingress/rspamd trusting Rspamd, 5 KB, the first ADMP_WORKERS)
    // on a server whose policy counts every mail against two rate quotas (per sender
    // domain, per pair; out of reach), with ACTIVE_QUOTA_KEYS other keys active.
    const workers = s.workers[0]!;
    const c: Case = { road: 'rspamd', bytes: SIZES['5 KB'] };
    const env = {
      ...serverEnvFor(workers, 'trust', await freePort(), await freePort()),
      ADMP_POLICY_FILE: await quotaPolicyFile('sender_domain', deps.cleanups),
    };
    await seedQuotaKeys(db.pool);
    log(
      `ingest with rate quotas: starting admp serve with ADMP_WORKERS=${workers}, 2 limit rules, ${ACTIVE_QUOTA_KEYS} other active keys`,
    );
    const server = await startServer(db.url, env, log, deps.serverRoot);
    try {
      const m = await measureCase(
        deps,
        s,
        { db, p, token, serverUrl: server.url, serverPid: server.pid, lmtpPort: 0, smtpPort: 0, ca },
        c,
        'trust',
        workers,
      );
      const plain = byCase.get(`rspamd/trust/${c.bytes}/${workers}`);
      const quotaLabel = `${m.label} with rate quotas`;
      m.notes.push(
        `${(await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM rate_quota')).rows[0]!.n} keys in rate_quota after the window`,
        ...(plain ? [`${(m.perSec / plain.perSec).toFixed(3)} × the same case without quotas in this run`] : []),
      );
      const quota = { ...m, label: quotaLabel };
      measurements.push(quota);
      quotaTarget = {
        path: `${quotaLabel} vs without (${ACTIVE_QUOTA_KEYS} active keys)`,
        ours: quota,
        baseline: plain,
        min: 0.95,
      };
    } finally {
      await server.stop();
    }
  }
  const targets: Target[] = INGEST_TARGETS.map((t) => ({
    path: `${label(t.road, t.mode, t.bytes, t.workers)} vs the issue's target`,
    ours: byCase.get(`${t.road}/${t.mode}/${t.bytes}/${t.workers}`),
    baseline: t.min,
    min: 1,
  }));
  // The edge printed beside the Rspamd road and a plain Postfix → LMTP delivery of the same mail.
  for (const workers of s.workers) {
    const edge = byCase.get(`smtp/trust/${SIZES['5 KB']}/${workers}`);
    for (const road of ['rspamd', 'postfix'] as const) {
      const beside = byCase.get(`${road}/trust/${SIZES['5 KB']}/${workers}`);
      if (edge && beside)
        targets.push({ path: `${edge.label} vs ${beside.label}, same run`, ours: edge, baseline: beside });
    }
  }
  if (quotaTarget) targets.push(quotaTarget);
  return { measurements, targets };
}

interface Running {
  db: BenchDatabase;
  p: Partner;
  token: string;
  serverUrl: string;
  serverPid: number;
  lmtpPort: number;
  smtpPort: number;
  ca: TestCa;
  postfixPort?: number;
  /** Postfix's master process, whose children (smtpd, cleanup, qmgr, lmtp) do the relaying. */
  postfixPid?: number;
}

/** The master's pid (Postfix writes it space-padded), so Postfix's CPU counts in its road's figures. */
const postfixMasterPid = (dir: string): number =>
  Number(readFileSync(join(dir, 'spool', 'pid', 'master.pid'), 'utf8').trim());

async function measureCase(
  deps: IngestDeps,
  s: IngestSettings,
  r: Running,
  c: Case,
  mode: DkimMode,
  workers: number,
): Promise<Measurement> {
  const name = label(c.road, mode, c.bytes, workers);
  const prefix = c.road === 'lmtp' || c.road === 'postfix' ? AUTHENTICATION_RESULTS : '';
  const tls = { servername: EDGE_HOSTNAME, caFile: r.ca.caFile };
  // Both drivers' results reduced to what the report needs.
  const drive = async (
    set: MailSet,
    seconds: number,
  ): Promise<Pick<Measurement, 'perSec' | 'p50Ms' | 'p99Ms' | 'errors' | 'notes'> & { ok: number; raw: unknown }> => {
    const firstError = (l: { firstError?: string }) => (l.firstError ? [`first error: ${l.firstError}`] : []);
    if (c.road === 'lmtp') {
      const l = await lmtpIngest(r.lmtpPort, set, { connections: s.connections, seconds });
      return { ...l, ok: l.items, raw: l, notes: firstError(l) };
    }
    if (c.road === 'smtp') {
      const l = await smtpEdgeIngest(r.smtpPort, tls, set, { connections: s.connections, seconds });
      return { ...l, ok: l.items, raw: l, notes: firstError(l) };
    }
    if (c.road === 'postfix') {
      const l = await postfixLmtpIngest(r.postfixPort!, r.db.pool, set, {
        connections: s.connections,
        seconds,
        drainSeconds: 120,
      });
      return {
        ...l,
        ok: l.stored,
        raw: l,
        notes: [
          `${l.accepted} queued by Postfix in ${seconds} s, ${l.stored} stored ${l.drainSeconds.toFixed(1)} s after the last; the rate is stored mail over the whole time (latency: Postfix's answer)`,
          ...firstError(l),
        ],
      };
    }
    const h = await rspamdIngest(r.serverUrl, r.token, set, { connections: s.connections, seconds });
    const errors = h.non2xx + h.errors + h.timeouts;
    return {
      ...h,
      errors,
      raw: h,
      notes: errors
        ? [`status codes ${JSON.stringify(h.statusCodes)}, errors ${h.errors}, timeouts ${h.timeouts}`]
        : [],
    };
  };

  const fresh = (count: number) => mailSet(r.p, { bytes: c.bytes, count, prefix });
  await sanityCheck(c.road, r, message(await fresh(1), 0), tls);
  const warmed = await warmUp(
    s.warmupSeconds,
    r.serverPid,
    (seconds, count) => fresh(count).then((set) => drive(set, seconds)),
    {
      rate: WARMUP_RATE[c.bytes]!,
      log: (line) => deps.log(`${name}: ${line}`),
    },
  );
  const roundSeconds = Math.max(MIN_ROUND_SECONDS, Math.ceil(s.seconds / s.rounds));
  deps.log(
    `${name}: ${s.connections} ${{ rspamd: 'HTTP connections (autocannon)', lmtp: 'LMTP sessions, pipelined', smtp: 'STARTTLS sessions, pipelined', postfix: 'SMTP sessions to Postfix, pipelined' }[c.road]}, ${s.rounds} windows of ${roundSeconds} s`,
  );
  const rounds: Round[] = [];
  let lastRate = warmed;
  for (let i = 0; i < s.rounds; i++) {
    // Each window has mail never seen before, sized from the last rate with headroom.
    const set = await fresh(
      Math.ceil(Math.max(WARMUP_RATE[c.bytes]!, lastRate * WINDOW_HEADROOM) * roundSeconds) + s.connections,
    );
    await settle(r.db.pool, ['message']);
    const before = await commitStats(r.db.pool);
    const { result, cpu } = await deps.measured(
      r.serverPid,
      () => drive(set, roundSeconds),
      c.road === 'postfix' ? { postfix: r.postfixPid } : {},
    );
    const after = await commitStats(r.db.pool);
    rounds.push({ result, cpu, stored: after.rows - before.rows, rowsPerCommit: rowsPerCommit(before, after), set });
    lastRate = result.perSec;
  }
  const { result, cpu, stored, set } = median(rounds);
  const accepted = rounds.reduce((n, x) => n + x.result.ok, 0);
  const storedAll = rounds.reduce((n, x) => n + x.stored, 0);
  const notes = [
    `${set.bytes}-byte messages; ${Math.round(storedAll)} rows stored for ${accepted} accepted in ${s.rounds} windows`,
    `windows (the median one is reported): ${rounds.map(roundText).join('; ')}`,
    ...result.notes,
  ];
  if (stored < result.ok)
    notes.push(
      `${Math.round(result.ok - stored)} accepted as duplicates: the ${set.heads.length} distinct messages ran out`,
    );
  return {
    label: name,
    unit: 'msgs/s',
    perSec: result.perSec,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    per: 'message',
    errors: rounds.reduce((n, x) => n + x.result.errors, 0),
    cpu,
    notes,
    raw: result.raw,
  };
}

/** One delivery before the load: a set-up fault should stop the bench, not show as errors in a table. */
async function sanityCheck(
  road: Road,
  r: Running,
  raw: Buffer,
  tls: { servername: string; caFile: string },
): Promise<void> {
  if (road === 'smtp') {
    const reply = await smtpEdgeSendOnce(r.smtpPort, tls, raw);
    if (!reply.startsWith('250')) throw new Error(`SMTP edge sanity delivery failed: ${reply}`);
    return;
  }
  if (road === 'lmtp' || road === 'postfix') {
    const t = await lmtpSend(r.lmtpPort, { from: `worker@${PARTNER_DOMAIN}`, to: [RECIPIENT_ADDRESS], data: raw });
    if (!t.data[0]?.startsWith('250')) throw new Error(`LMTP sanity delivery failed: ${JSON.stringify(t)}`);
    return;
  }
  const res = await fetch(`${r.serverUrl}/ingress/rspamd`, {
    method: 'POST',
    body: new Uint8Array(raw),
    headers: {
      authorization: `Bearer ${r.token}`,
      'content-type': 'message/rfc822',
      'x-envelope-from': `worker@${PARTNER_DOMAIN}`,
      'x-envelope-to': RECIPIENT_ADDRESS,
      'x-rspamd-auth': RSPAMD_AUTH,
    },
  });
  const body = await res.text();
  if (res.status !== 200 || !body.includes('"duplicate":false'))
    throw new Error(`/ingress/rspamd sanity delivery failed: HTTP ${res.status} ${body}`);
}

interface Round {
  result: { perSec: number; ok: number; p50Ms: number; p99Ms: number; errors: number; notes: string[]; raw: unknown };
  cpu: CpuReport;
  stored: number;
  rowsPerCommit: string;
  set: MailSet;
}

/** The window with the median rate (the lower middle one of an even count). */
function median(rounds: readonly Round[]): Round {
  const sorted = [...rounds].sort((a, b) => a.result.perSec - b.result.perSec);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** A window's rate, the server's and PostgreSQL's CPU per message, and other work on the box. */
function roundText(x: Round): string {
  const us = (pct: number | undefined) => Math.round(((pct ?? 0) / 100 / Math.max(x.result.perSec, 1e-9)) * 1e6);
  return `${Math.round(x.result.perSec)}/s, server ${us(x.cpu.server)} µs + PostgreSQL ${us(x.cpu.postgres)} µs per message, ${x.rowsPerCommit} rows per commit, other load ${x.cpu.foreign}%`;
}

/** The last two slices each no cheaper (within WARMUP_FALL) than the cheapest slice before them: one slow slice is not a plateau. */
function levelled(us: readonly number[]): boolean {
  if (us.length < 3) return false;
  const floor = Math.min(...us.slice(0, -2)) * (1 - WARMUP_FALL);
  return us.slice(-2).every((x) => x >= floor);
}

/**
 * Drives the server in slices until it is warm: at least `minSeconds`, then on while the
 * server's CPU per message still falls by more than WARMUP_FALL from one slice to the
 * next (see `levelled`), up to WARMUP_MAX_SECONDS. A fresh server keeps getting cheaper per message for
 * many seconds under load (V8 optimises the parse, the signature check and the enqueue
 * only after thousands of calls, in each worker process): a fixed 2 s warm-up left the
 * window on that slope, and the figure moved with how far up it had got. CPU per message
 * rather than the rate decides, because other work on the box moves the rate far more.
 * Returns the last slice's rate.
 */
async function warmUp(
  minSeconds: number,
  serverPid: number,
  slice: (seconds: number, count: number) => Promise<{ perSec: number }>,
  o: { rate: number; log: (line: string) => void },
): Promise<number> {
  const seen: { perSec: number; us: number }[] = [];
  let elapsed = 0;
  for (;;) {
    const seconds = WARMUP_SLICE_SECONDS;
    const fastest = Math.max(0, ...seen.map((x) => x.perSec));
    const close = cpuWindow({ server: serverPid });
    const { perSec } = await slice(seconds, Math.ceil(Math.max(o.rate, fastest * WINDOW_HEADROOM) * seconds));
    const us = (close().server! / 100 / Math.max(perSec, 1e-9)) * 1e6;
    seen.push({ perSec, us });
    elapsed += seconds;
    if (elapsed >= WARMUP_MAX_SECONDS || (elapsed >= minSeconds && levelled(seen.map((x) => x.us)))) break;
  }
  o.log(
    `warm-up ${elapsed} s: ${seen.map((x) => `${Math.round(x.perSec)}/s at ${Math.round(x.us)} µs`).join(', ')} (server CPU per message)`,
  );
  return seen.at(-1)!.perSec;
}
