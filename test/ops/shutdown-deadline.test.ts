// SIGTERM ends a real `admp serve` process within its deadline (the grace period plus
// STOP_MARGIN_MS) whatever the stop waits on. Here a request's query is held by a database
// that stopped answering, with a statement timeout (60 s) far past the deadline, so the pool
// cannot close in time: the process says so and exits 1 at the deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { freezingRelay } from '../helpers/freezing-relay.js';
import { STOP_MARGIN_MS, stopWithin } from '../../src/app/shutdown.js';

const REPO = join(import.meta.dirname, '..', '..');
const GRACE_MS = 500;

test('SIGTERM while the database holds a query past the deadline: exit 1 at the deadline, logged', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const relay = await freezingRelay(db.url);
  t.after(() => relay.close());
  const httpPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: REPO,
    env: {
      ...process.env,
      DATABASE_URL: relay.url,
      ADMP_DOMAINS: 'agents.test',
      ADMP_POLICY_FILE: '',
      ADMP_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      ADMP_LMTP_LISTEN: '',
      ADMP_METRICS_LISTEN: '',
      ADMP_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      ADMP_PG_STATEMENT_TIMEOUT_MS: '60000',
      ADMP_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (c: Buffer) => {
      output += c.toString();
    });
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 60_000;
  while ((await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.status !== 200) {
    assert.ok(Date.now() < deadline, `the server never became ready:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  relay.freeze();
  // In flight when SIGTERM comes: /readyz's query, which the frozen database never answers.
  void fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300));
  const termAt = Date.now();
  child.kill('SIGTERM');
  const bound = GRACE_MS + STOP_MARGIN_MS;
  const outcome = await Promise.race([exited, new Promise((r) => setTimeout(r, bound + 5_000, 'still running'))]);
  const took = Date.now() - termAt;
  assert.equal(outcome, 1, `exit code after ${took} ms:\n${output}`);
  assert.ok(took >= bound - 100 && took < bound + 2_000, `exited after ${took} ms, deadline ${bound} ms`);
  const events = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event?: string; outcome?: string; ms?: number });
  assert.ok(
    events.some((e) => e.event === 'shutdown' && e.outcome === 'timeout' && e.ms === bound),
    `the log says the shutdown timed out:\n${output}`,
  );
});

test('stopWithin: a stop that never ends gives way at the deadline; one that ends is reported stopped', async () => {
  const started = Date.now();
  assert.equal(await stopWithin(() => new Promise<void>(() => undefined), 200), 'timeout');
  assert.ok(Date.now() - started >= 190);
  assert.equal(await stopWithin(async () => undefined, 10_000), 'stopped');
  await assert.rejects(
    stopWithin(async () => {
      throw new Error('pool end failed');
    }, 10_000),
    /pool end failed/,
  );
});
