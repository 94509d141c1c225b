// `admp webhook add|list|enable|remove`, run as the CLI (in this process, test/helpers/cli.ts;
// the refused address also as the real binary) against a test database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { addAgent } from '../../src/db/agents.js';
import { admp as admpIn, admpBinary, type CliResult } from '../helpers/cli.js';

test('webhook endpoints: added with a secret shown once, listed, refused for private addresses, removed', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  await addAgent(db.pool, 'bob', 'agents.test');
  const env = {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: db.url,
    ADMP_MIGRATE_ON_START: 'false',
    ADMP_DOMAINS: 'agents.test',
  };
  const admp = async (...args: string[]) => {
    const r = await admpIn(env, ...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const failed = (args: string[], r: CliResult) => {
    assert.notEqual(r.code, 0, `admp ${args.join(' ')} succeeded`);
    assert.equal(r.stdout, '');
    return r;
  };
  const fails = async (...args: string[]) => failed(args, await admpIn(env, ...args));

  const added = JSON.parse(
    await admp(
      'webhook',
      'add',
      'bob',
      'https://hooks.example.com/admp',
      '--type',
      'task.request',
      '--ed25519',
      '--json',
    ),
  );
  assert.match(added.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.match(added.public_key, /^whpk_/);
  assert.deepEqual(added.types, ['task.request']);

  const listed = await admp('webhook', 'list', 'bob');
  assert.match(listed, /https:\/\/hooks\.example\.com\/admp/);
  assert.ok(!listed.includes(added.secret.slice(6)), 'the list never shows the secret');

  const refusedArgs = ['webhook', 'add', 'bob', 'http://192.168.1.10/hook'];
  for (const cli of [admpBinary, admpIn])
    assert.match(failed(refusedArgs, await cli(env, ...refusedArgs)).stderr, /^admp: .*refused/);
  const nobody = await fails('webhook', 'add', 'nobody', 'https://hooks.example.com/x');
  assert.match(nobody.stderr, /no agent nobody/);

  assert.match(await admp('webhook', 'remove', added.id), /removed/);
  assert.match(await admp('webhook', 'list'), /\(none\)/);
  const again = await fails('webhook', 'remove', added.id);
  assert.match(again.stderr, /no webhook endpoint/);
});
