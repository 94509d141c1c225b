// The baseline: pgbench committing the same row our send writes, one INSERT per
// transaction, at the same concurrency, into our schema in a database of its own.
// The columns are the ones enqueue_message fills for a local HTTP send with an
// Idempotency-Key (fingerprint, expiry, delivery_log and all four unique/partial
// indexes maintained); only the plpgsql wrapper, NOTIFY and the batching are absent.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from './loops.js';
import { BODY_PREFIX, SENDER_ADDRESS, SUBJECT, TTL_SEC, TYPE } from './workload.js';

export const PGBENCH = process.env.BENCH_PGBENCH ?? '/usr/lib/postgresql/15/bin/pgbench';

// pgbench turns every ":name" in the text into a parameter, even inside literals (the
// JSON body has `"max_words":200`); an E'' literal spells ':' as \x3a instead.
const sql = (s: string) => `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/:/g, '\\x3a')}'`;

export const INSERT_SCRIPT = `\\set a random(0, :recipients - 1)
\\set seq random(1, 1000000000)
INSERT INTO message (id, to_agent_id, channel, from_agent, subject, type, body, headers, correlation_id, idempotency_key,
                     status, ttl_sec, expires_at, delivered_at, source_fingerprint, delivery_log)
VALUES (gen_random_uuid(), 'rcpt-' || lpad(:a::text, 3, '0'), 'http', ${sql(SENDER_ADDRESS)}, ${sql(SUBJECT)}, ${sql(TYPE)},
        (${sql(BODY_PREFIX)} || :seq::text || '}')::jsonb, '{}', gen_random_uuid()::text, gen_random_uuid()::text,
        'delivered', ${TTL_SEC}, now() + make_interval(secs => ${TTL_SEC}), now(), sha256(gen_random_uuid()::text::bytea),
        jsonb_build_array(jsonb_build_object('at', now(), 'event', 'delivered', 'channel', 'http')));
`;

export interface PgbenchResult {
  readonly perSec: number;
  readonly transactions: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failed: number;
}

export interface PgbenchRun {
  readonly pid: number;
  readonly done: Promise<PgbenchResult>;
  kill(): void;
}

export function pgbenchInsert(url: string, opts: { clients: number; seconds: number; recipients: number }): PgbenchRun {
  const u = new URL(url);
  const dir = mkdtempSync(join(tmpdir(), 'admp-bench-pgbench-'));
  writeFileSync(join(dir, 'insert.sql'), INSERT_SCRIPT);
  const child = spawn(
    PGBENCH,
    [
      '-n',
      '-M',
      'prepared',
      '-f',
      join(dir, 'insert.sql'),
      '-D',
      `recipients=${opts.recipients}`,
      '-c',
      String(opts.clients),
      '-j',
      String(Math.min(opts.clients, 2)),
      '-T',
      String(opts.seconds),
      '-l',
      `--log-prefix=${join(dir, 'tx')}`,
    ],
    {
      env: {
        ...process.env,
        PGHOST: u.hostname,
        PGPORT: u.port || '5432',
        PGUSER: decodeURIComponent(u.username),
        PGPASSWORD: decodeURIComponent(u.password),
        PGDATABASE: u.pathname.slice(1),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c));
  child.stderr!.on('data', (c: Buffer) => (out += c));
  const done = new Promise<PgbenchResult>((ok, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`pgbench exited with ${code}:\n${out}`);
        const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
        const tx = /number of transactions actually processed: (\d+)/.exec(out);
        const failed = /number of failed transactions: (\d+)/.exec(out);
        if (!tps || !tx) throw new Error(`cannot read pgbench output:\n${out}`);
        // Per-transaction log: client_id transaction_no time_us script_no time_epoch time_us_part.
        const lat = readdirSync(dir)
          .filter((f) => f.startsWith('tx.'))
          .flatMap((f) =>
            readFileSync(join(dir, f), 'utf8')
              .split('\n')
              .filter(Boolean)
              .map((l) => Number(l.split(' ')[2]) / 1000),
          );
        lat.sort((a, b) => a - b);
        ok({
          perSec: Number(tps[1]),
          transactions: Number(tx[1]),
          p50Ms: percentile(lat, 50),
          p99Ms: percentile(lat, 99),
          failed: Number(failed?.[1] ?? 0),
        });
      } catch (err) {
        fail(err);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
  return { pid: child.pid!, done, kill: () => child.kill('SIGKILL') };
}
