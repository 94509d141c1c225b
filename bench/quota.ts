// What the rate quota steps add to a server (docs/policy.md, Rate quotas): a policy file
// with two `limit` rules matching every message of the workload (per sender or sender
// domain, and per pair), set out of reach so nothing is refused but every message is
// counted; and 1,000 other active quota keys in rate_quota, so the counting statement
// works on a table of the size the issue names rather than on a handful of rows.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type { CpuReport } from './cpu.js';
import type { SendResult } from './send.js';

export const ACTIVE_QUOTA_KEYS = 1000;

/** Out of reach: a million a second per key (the counter still moves one microsecond per message). */
const QUOTA = 'limit: 1000000, window_sec: 1';

/** Writes the policy file; `per` is what the first rule counts by (`sender` on sends, `sender_domain` on mail). */
export async function quotaPolicyFile(
  per: 'sender' | 'sender_domain',
  cleanups: (() => Promise<void>)[],
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'admp-bench-quota-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'policy.yaml');
  await writeFile(
    file,
    `rules:
  - { id: bench-${per}, from: "*", to: "*", action: limit, quota: { per: ${per}, ${QUOTA} } }
  - { id: bench-pair, from: "*", to: "*", action: limit, quota: { per: pair, ${QUOTA} } }
`,
  );
  return file;
}

/** Seeds ACTIVE_QUOTA_KEYS keys of the pair rule for other senders, each just used (at rest in an hour). */
export async function seedQuotaKeys(pool: pg.Pool): Promise<void> {
  await pool.query(
    `INSERT INTO rate_quota (key, tat_us, interval_us, burst, granted)
     SELECT 'bench-pair|pair=other-' || i || '@agents.bench>rcpt@agents.bench', $1::bigint, 3600000000, 1, 1
       FROM generate_series(1, $2::int) AS i
     ON CONFLICT (key) DO UPDATE SET tat_us = EXCLUDED.tat_us`,
    [(Date.now() + 3_600_000) * 1000, ACTIVE_QUOTA_KEYS],
  );
}

/** One measured window: what the load generator saw and where the CPU went. */
export interface Window {
  readonly result: SendResult;
  readonly cpu: CpuReport;
}

/** Two windows of one side as one: requests over their seconds, CPU shares weighted by seconds. */
function joined(x: Window, y: Window): Window {
  const seconds = x.result.seconds + y.result.seconds;
  const sum = (f: (r: SendResult) => number) => f(x.result) + f(y.result);
  const weighted = (f: (w: Window) => number) => (f(x) * x.result.seconds + f(y) * y.result.seconds) / seconds;
  const codes: Record<string, number> = {};
  for (const r of [x.result, y.result])
    for (const [k, v] of Object.entries(r.statusCodes)) codes[k] = (codes[k] ?? 0) + v;
  const cpu: CpuReport = {};
  for (const k of new Set([...Object.keys(x.cpu), ...Object.keys(y.cpu)]))
    cpu[k] = Math.round(weighted((w) => w.cpu[k] ?? 0));
  return {
    result: {
      perSec: sum((r) => r.ok) / seconds,
      ok: sum((r) => r.ok),
      non2xx: sum((r) => r.non2xx),
      errors: sum((r) => r.errors),
      timeouts: sum((r) => r.timeouts),
      // Percentiles of two windows cannot be merged exactly: the mean median, the worse p99.
      p50Ms: weighted((w) => w.result.p50Ms),
      p99Ms: Math.max(x.result.p99Ms, y.result.p99Ms),
      seconds,
      statusCodes: codes,
    },
    cpu,
  };
}

/**
 * The send with quotas and its baseline, measured as a pair: windows plain, quotas,
 * quotas, plain, each half of `seconds`, with both servers up in every window. Measured
 * apart (the plain send first, the quota server started later beside it), the quota
 * window alone paid for a second server listening for the inbox wake-ups: every commit
 * of the quota server notified the idle plain server too (one notification per inbox,
 * about one per send), its CPU and its PostgreSQL backend's taken from the two cores the
 * measured pair shares; and it came later, on a larger table. Paired, both sides pay the
 * same, and the order of the windows cancels out (ABBA).
 */
export async function quotaPair(
  seconds: number,
  measure: (side: 'plain' | 'quota', seconds: number) => Promise<Window>,
): Promise<{ plain: Window; quota: Window }> {
  const half = Math.max(1, Math.round(seconds / 2));
  const a1 = await measure('plain', half);
  const b1 = await measure('quota', half);
  const b2 = await measure('quota', half);
  const a2 = await measure('plain', half);
  return { plain: joined(a1, a2), quota: joined(b1, b2) };
}
