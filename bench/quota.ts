// What the rate quota steps add to a server (docs/policy.md, Rate quotas): a policy file
// with two `limit` rules matching every message of the workload (per sender or sender
// domain, and per pair), set out of reach so nothing is refused but every message is
// counted; and 1,000 other active quota keys in rate_quota, so the counting statement
// works on a table of the size the issue names rather than on a handful of rows.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';

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
