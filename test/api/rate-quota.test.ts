// Rate quotas of the policy (`limit` rules, docs/policy.md) on HTTP sends and replies:
// hit and recovered, shared by two server instances on one database, kept across a
// restart, counted exactly under concurrency, a large quota counted by blocks across two
// instances, a reply loop stopped by the loop guard, and rules from the policy file and
// from `admp policy add` alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestApi, type TestAgent } from '../helpers/api.js';
import { wire, type Core } from '../../src/app/server.js';
import { createLogger } from '../../src/log.js';
import { readPolicyFile } from '../../src/policy/store.js';
import { ConfigError } from '../../src/errors.js';

const run = promisify(execFile);
const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;

async function policyFile(t: { after: (f: () => Promise<void>) => void }, yaml: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'admp-quota-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'policy.yaml');
  await writeFile(file, yaml);
  return file;
}

const send = (core: Core, from: TestAgent, to: string, extra: Record<string, unknown> = {}) =>
  core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: from.auth,
    payload: { to, type: 'task.request', body: {}, ...extra },
  });

test('an HTTP send over a sender quota gets 429 with Retry-After, other senders do not, and it recovers', async (t) => {
  const file = await policyFile(
    t,
    `rules:
  - { id: per-sender, from: "*", to: "*", action: limit, quota: { per: sender, limit: 2, window_sec: 2 } }
`,
  );
  const api = await startTestApi({ ADMP_POLICY_FILE: file });
  t.after(() => api.close());
  const [alice, bob, carol] = [await api.agent('alice'), await api.agent('bob'), await api.agent('carol')];
  const started = Date.now();
  assert.equal((await send(api.core, alice, bob.address)).statusCode, 201);
  assert.equal((await send(api.core, alice, carol.address)).statusCode, 201, 'counted per sender, whoever receives');
  const over = await send(api.core, alice, bob.address);
  assert.equal(over.statusCode, 429);
  assert.equal(over.json().error.code, 'rate_limited');
  assert.deepEqual(
    { ...over.json().error.details, retry_after_sec: undefined },
    { rule: 'per-sender', key: 'sender=alice@agents.test', window: '2s', retry_after_sec: undefined },
  );
  assert.equal(over.headers['retry-after'], '1', 'one place frees up every second');
  assert.match(over.json().error.message, /per-sender: sender=alice@agents.test is over 2 messages per 2 s/);
  assert.equal((await send(api.core, bob, alice.address)).statusCode, 201, 'bob has his own quota');
  assert.match(
    await api.core.metrics.registry.metrics(),
    /admp_rate_limited_total\{scope="http",rule="per-sender",window="2s"\} 1/,
  );
  assert.equal(
    (await api.db.pool.query("SELECT count(*)::int AS n FROM message WHERE from_agent = 'alice@agents.test'")).rows[0]
      .n,
    2,
    'nothing of the refused send is stored',
  );
  let status = 429;
  while (status === 429 && Date.now() - started < 10_000) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await send(api.core, alice, bob.address)).statusCode;
  }
  assert.equal(status, 201, 'recovered');
  assert.ok(Date.now() - started >= 900, 'not before a place freed up');
});

test('concurrent sends are counted exactly: a burst of 5 admits 5 of 20', async (t) => {
  const file = await policyFile(
    t,
    `rules:
  - { id: pair, from: "*", to: "*", action: limit, quota: { per: pair, limit: 5, window_sec: 3600 } }
`,
  );
  const api = await startTestApi({ ADMP_POLICY_FILE: file });
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const answers = await Promise.all(Array.from({ length: 20 }, () => send(api.core, alice, bob.address)));
  const codes = answers.map((a) => a.statusCode).sort();
  assert.deepEqual(codes, [...Array(5).fill(201), ...Array(15).fill(429)]);
  const retry = Number(answers.find((a) => a.statusCode === 429)!.headers['retry-after']);
  assert.ok(retry >= 719 && retry <= 720, `one place in 720 s (${retry})`);
});

test("an agent's retry of a stored send (same Idempotency-Key) spends no quota and gets its first answer", async (t) => {
  const file = await policyFile(
    t,
    `rules:
  - { id: one, from: "*", to: "*", action: limit, quota: { per: sender, limit: 1, window_sec: 3600 } }
`,
  );
  const api = await startTestApi({ ADMP_POLICY_FILE: file });
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const keyed = { ...alice, auth: { ...alice.auth, 'idempotency-key': 'job-1' } };
  const first = await send(api.core, keyed, bob.address);
  assert.equal(first.statusCode, 201);
  // The reply was lost; the agent sends again with the same key, its quota spent.
  const again = await send(api.core, keyed, bob.address);
  assert.equal(again.statusCode, 200, again.body);
  assert.equal(again.json().id, first.json().id);
  const other = await send(api.core, alice, bob.address);
  assert.equal(other.statusCode, 429, 'a new message is over the quota');
});

test('two instances on one database share the counters, and a restart keeps them', async (t) => {
  const file = await policyFile(
    t,
    `rules:
  - { id: partner-ish, from: "*@agents.other.test", to: "*", action: limit,
      quota: { per: sender_domain, limit: 4, window_sec: 3600, burst: 3 } }
`,
  );
  const api = await startTestApi({ ADMP_POLICY_FILE: file });
  // The extra instances stop before the first one drops the database.
  const running = new Set<Core>();
  t.after(async () => {
    for (const c of running) await c.stop();
    await api.close();
  });
  const instance = async () => {
    const core = await wire(api.config, api.db, createLogger('silent'));
    running.add(core);
    return core;
  };
  const second = await instance();
  const [x, y, bob] = [
    await api.agent('x', 'agents.other.test'),
    await api.agent('y', 'agents.other.test'),
    await api.agent('bob'),
  ];
  // The domain's burst of 3, spent across both instances and both agents of the domain.
  assert.equal((await send(api.core, x, bob.address)).statusCode, 201);
  assert.equal((await send(second, y, bob.address)).statusCode, 201);
  assert.equal((await send(second, x, bob.address)).statusCode, 201);
  assert.equal(
    (await send(api.core, y, bob.address)).statusCode,
    429,
    'the first instance sees what the second counted',
  );
  assert.equal((await send(second, x, bob.address)).statusCode, 429);

  // A restart: the second instance stops, and one started afresh (nothing in memory) counts on.
  await second.stop();
  running.delete(second);
  const third = await instance();
  const after = await send(third, x, bob.address);
  assert.equal(after.statusCode, 429, 'the quota survived the restart');
  assert.equal(after.json().error.details.key, 'sender_domain=agents.other.test');
  assert.ok(Number(after.headers['retry-after']) > 800, 'the next place is 900 s after the last');
  assert.equal((await send(third, bob, x.address)).statusCode, 201, 'other domains are not counted');
});

test('a large quota, counted by blocks, across two instances: never more than its burst, retries still answered', async (t) => {
  // Burst 256, one place every 6 s: blocks of 10 (a minute of the quota) in each instance.
  const file = await policyFile(
    t,
    `rules:
  - { id: big, from: "*", to: "*", action: limit, quota: { per: sender, limit: 600, window_sec: 3600, burst: 256 } }
`,
  );
  const api = await startTestApi({ ADMP_POLICY_FILE: file });
  const second = await wire(api.config, api.db, createLogger('silent'));
  t.after(async () => {
    await second.stop();
    await api.close();
  });
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const started = Date.now();
  const keyed = { ...alice, auth: { ...alice.auth, 'idempotency-key': 'first' } };
  const first = await send(api.core, keyed, bob.address);
  assert.equal(first.statusCode, 201, first.body);
  // 300 at once, half through each instance.
  const answers = await Promise.all(
    Array.from({ length: 300 }, (_, i) => send(i % 2 ? api.core : second, alice, bob.address)),
  );
  const codes = answers.map((r) => r.statusCode);
  const admitted = 1 + codes.filter((c) => c === 201).length;
  assert.equal(codes.filter((c) => c !== 201 && c !== 429).length, 0);
  // Places freed while the test ran (one every 6 s) may be admitted too; nothing more.
  const freed = Math.floor((Date.now() - started) / 6000) + 1;
  assert.ok(admitted <= 256 + freed, `admitted ${admitted}`);
  assert.ok(admitted >= 256 - 2 * 10, `at most a block per instance held back: ${admitted}`);
  const { rows } = await api.db.pool.query('SELECT count(*)::int AS n FROM message WHERE from_agent = $1', [
    alice.address,
  ]);
  assert.equal(rows[0].n, admitted, 'every 201 stored, nothing else');
  const over = answers.find((r) => r.statusCode === 429)!;
  assert.equal(over.json().error.details.key, `sender=${alice.address}`);
  assert.ok(Number(over.headers['retry-after']) >= 1);

  // The quota spent, an idempotent retry of a stored send is still answered with its id.
  for (const core of [api.core, second]) {
    const again = await send(core, keyed, bob.address);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().id, first.json().id);
  }
});

test('a reply loop between two agents is stopped by the loop guard', async (t) => {
  const file = await policyFile(
    t,
    `rules:
  - { id: loop-guard, from: "*", to: "*", action: limit, quota: { per: correlation, limit: 3, window_sec: 60 } }
`,
  );
  const api = await startTestApi({ ADMP_POLICY_FILE: file });
  t.after(() => api.close());
  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  const first = await send(api.core, alice, bob.address, { correlation_id: 'thread-1' });
  assert.equal(first.statusCode, 201);
  // Each agent answers every message it gets: the classic loop.
  const agents = [bob, alice];
  let replies = 0;
  let refused:
    { statusCode: number; json(): { error: { code: string; details: Record<string, unknown> } } } | undefined;
  for (let round = 0; round < 20 && !refused; round++) {
    const me = agents[round % 2]!;
    const pulled = await api.core.app.inject({
      method: 'POST',
      url: '/v1/inbox/pull',
      headers: me.auth,
      payload: { max: 1 },
    });
    const m = pulled.json().messages[0];
    assert.ok(m, `round ${round}: a message to answer`);
    const r = await api.core.app.inject({
      method: 'POST',
      url: `/v1/messages/${m.id}/reply`,
      headers: me.auth,
      payload: { lease_id: m.lease_id, type: 'task.result', body: { round } },
    });
    if (r.statusCode === 429) refused = r;
    else {
      assert.equal(r.statusCode, 201, r.body);
      replies++;
    }
  }
  assert.ok(refused, 'the loop was stopped');
  assert.equal(refused.json().error.details.rule, 'loop-guard');
  // alice's first send and 2 replies of hers, 3 of bob's: then the side whose 4th it is is refused.
  assert.equal(replies, 5);
  assert.match(String(refused.json().error.details.key), /^correlation=(alice|bob)@agents\.test>thread-1$/);
  // Another thread of the same agents is not affected.
  assert.equal((await send(api.core, alice, bob.address, { correlation_id: 'thread-2' })).statusCode, 201);
});

test('admp policy add --action limit: a run-time quota, listed, and applied to sends', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const env = { PATH: process.env.PATH ?? '', DATABASE_URL: api.db.url, ADMP_MIGRATE_ON_START: 'false' };
  const admp = async (...args: string[]) =>
    (await run(process.execPath, ['--import', 'tsx', main, ...args], { env })).stdout;
  const added = JSON.parse(
    await admp(
      'policy',
      'add',
      '--action',
      'limit',
      '--from',
      '*',
      '--to',
      'bob@*',
      '--per',
      'recipient',
      '--limit',
      '1',
      '--window',
      '60',
      '--json',
    ),
  );
  assert.deepEqual(
    [added.action, added.quota_per, added.quota_limit, added.quota_window_sec, added.quota_burst],
    ['limit', 'recipient', 1, 60, null],
  );
  assert.match(await admp('policy', 'list'), /limit .*1\/60s per recipient/);
  await assert.rejects(api.core.admin.addRule({ from: '*', to: '*', action: 'limit' }), (e: Error) =>
    /a limit rule needs its quota/.test(e.message),
  );

  const [alice, bob] = [await api.agent('alice'), await api.agent('bob')];
  assert.equal((await send(api.core, alice, bob.address)).statusCode, 201);
  const over = await send(api.core, alice, bob.address);
  assert.equal(over.statusCode, 429);
  assert.equal(over.json().error.details.rule, `db:${added.id}`);
  // A limit rule never admits: the dry run still decides by the allow/deny rules.
  const dry = await api.core.admin.dryRun({
    from: 'p@agents.partner.example',
    to: 'bob@agents.test',
    type: 't',
    bytes: 0,
  });
  assert.equal(dry.allow, false);
});

test('a limit rule without its quota, or a quota on an allow rule, stops the start', async (t) => {
  for (const [yaml, problem] of [
    ['rules: [{ from: "*", to: "*", action: limit }]', /rules\/0: a limit rule needs its quota/],
    [
      'rules: [{ from: "*", to: "*", action: allow, quota: { per: sender, limit: 1, window_sec: 1 } }]',
      /rules\/0: a quota belongs on a limit rule/,
    ],
    ['rules: [{ from: "*", to: "*", action: limit, quota: { per: everyone, limit: 1, window_sec: 1 } }]', /quota\/per/],
  ] as const) {
    const file = await policyFile(t, yaml);
    assert.throws(
      () => readPolicyFile(file),
      (e: unknown) => e instanceof ConfigError && problem.test(e.message),
    );
  }
});
