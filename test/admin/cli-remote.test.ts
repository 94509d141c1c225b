// The operator commands through a running server's admin API (ADMP_URL + an admin
// token), and the same commands on the database directly: one answer either way. Run as
// the CLI in this process (test/helpers/cli.ts); the first remote command as the real binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApi } from '../helpers/api.js';
import { admp as admpIn, admpBinary } from '../helpers/cli.js';

test('admp agent, policy, messages and dead: remotely with ADMP_URL, and locally', async (t) => {
  const api = await startTestApi();
  t.after(() => api.close());
  const base = await api.core.app.listen({ host: '127.0.0.1', port: 0 });
  const rw = await api.core.admin.createAdminToken('cli', false);
  const ro = await api.core.admin.createAdminToken('viewer', true);
  const local = {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: api.db.url,
    ADMP_MIGRATE_ON_START: 'false',
    ADMP_DOMAINS: 'agents.test',
  };
  // No DATABASE_URL remotely: the CLI must not need the database.
  const remote = (token: string) => ({ PATH: process.env.PATH ?? '', ADMP_URL: base, ADMP_ADMIN_TOKEN: token });
  const admp = async (env: Record<string, string>, ...args: string[]) => {
    const r = await admpIn(env, ...args, '--json');
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const fails = async (env: Record<string, string>, ...args: string[]) => {
    const r = await admpIn(env, ...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    assert.equal(r.stdout, '');
    return r;
  };

  const added = await admpBinary(remote(rw.token), 'agent', 'add', 'bob', '--json');
  assert.equal(added.code, 0, added.stderr);
  const bob = JSON.parse(added.stdout);
  assert.equal(bob.address, 'bob@agents.test');
  assert.match(bob.token, /^admp_/);
  const alice = await api.agent('alice');
  const sent = await api.core.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: alice.auth,
    payload: { to: 'bob@agents.test', type: 'task.request', body: {}, correlation_id: 'cli-1' },
  });
  const id = sent.json().id as string;

  const found = await admp(remote(ro.token), 'messages', '--correlation-id', 'cli-1');
  assert.deepEqual(
    found.messages.map((m: { id: string }) => m.id),
    [id],
  );
  assert.deepEqual(await admp(local, 'messages', '--correlation-id', 'cli-1'), found, 'same answer locally');

  const rule = await admp(remote(rw.token), 'policy', 'add', '--from', '*@agents.vendor.example', '--to', 'bob@*');
  assert.deepEqual(
    await admp(
      remote(ro.token),
      'policy',
      'dry-run',
      '--from',
      'x@agents.vendor.example',
      '--to',
      'bob@agents.test',
      '--type',
      't',
    ),
    { allow: true, rule: `db:${rule.id}` },
  );

  await api.db.pool.query("UPDATE message SET status = 'dead' WHERE id = $1", [id]);
  const refused = await fails(remote(ro.token), 'dead', 'redrive', 'bob', id);
  assert.match(refused.stderr, /read-only/);
  assert.deepEqual(await admp(remote(rw.token), 'dead', 'redrive', 'bob', id), { redriven: [id] });

  const badToken = await fails(remote('admpadm_nope'), 'agent', 'list');
  assert.match(badToken.stderr, /not a live admin token/);
  const badStatus = await fails(local, 'messages', '--status', 'lost');
  assert.equal(badStatus.code, 64, badStatus.stderr);
});
