// `admp agent cert add|list|remove`, run as the CLI (in this process, test/helpers/cli.ts;
// the first refusal also as the real binary): a certificate file binds its
// SPKI pin (the same pin openssl computes), a subject is stored in canonical form, and
// bad input is refused with exit code 64 before anything is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { createTestDatabase } from '../helpers/db.js';
import { createTestCa } from '../helpers/test-ca.js';
import { addAgent } from '../../src/db/agents.js';
import { listCertBindings } from '../../src/db/client-certs.js';
import { parseBinding } from '../../src/core/client-cert.js';
import { admp as admpIn, admpBinary } from '../helpers/cli.js';

test('agent cert add/list/remove', async (t) => {
  const db = await createTestDatabase();
  const ca = await createTestCa();
  t.after(async () => {
    ca.remove();
    await db.drop();
  });
  await addAgent(db.pool, 'alice', 'agents.test');
  const env = { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, ADMP_DOMAINS: 'agents.test' };
  const admp = async (...args: string[]) => {
    const r = await admpIn(env, ...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const fails = async (...args: string[]) => {
    const r = await admpIn(env, ...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    assert.equal(r.stdout, '');
    return r;
  };
  const cert = await ca.issueClient('/O=Example/CN=alice');
  const pin = execSync(
    `openssl x509 -pubkey -noout -in ${cert.cert} | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
    { encoding: 'utf8' },
  ).trim();
  assert.deepEqual(JSON.parse(await admp('agent', 'cert', 'add', 'alice', '--cert', cert.cert, '--json')), {
    agent: 'alice',
    kind: 'spki',
    value: pin,
  });
  await admp('agent', 'cert', 'add', 'alice', '--subject', 'cn = alice, O=Example');
  const rows = JSON.parse(await admp('agent', 'cert', 'list', 'alice', '--json'));
  assert.deepEqual(
    rows.map((r: { kind: string; value: string }) => [r.kind, r.value]),
    [
      ['spki', pin],
      ['subject', 'CN=alice, O=Example'],
    ],
  );
  // The pure parsing is tested directly below.
  const both = ['agent', 'cert', 'add', 'alice', '--spki', pin, '--subject', 'CN=x'];
  assert.equal((await admpBinary(env, ...both)).code, 64, 'the real binary: EX_USAGE');
  assert.equal((await fails(...both)).code, 64);
  assert.equal((await fails('agent', 'cert', 'add', 'nobody', '--spki', pin)).code, 1);
  await admp('agent', 'cert', 'remove', 'alice', '--subject', 'O=Example/CN=alice');
  assert.equal((await fails('agent', 'cert', 'remove', 'alice', '--subject', 'CN=alice, O=Example')).code, 1);
  assert.deepEqual(
    (await listCertBindings(db.pool, 'alice')).map((r) => r.kind),
    ['spki'],
  );
});

test('binding input: pins and subjects are checked and normalised', () => {
  const pin = 'a'.repeat(43) + '=';
  assert.deepEqual(parseBinding('spki', ` ${pin} `), { kind: 'spki', value: pin });
  for (const bad of ['abc', pin.slice(1), `${pin}=`, 'a'.repeat(42) + '-='])
    assert.throws(() => parseBinding('spki', bad));
  for (const written of ['CN=alice, O=Example', 'o=Example,cn=alice', '/O=Example/CN=alice', 'O = Example\nCN = alice'])
    assert.equal(parseBinding('subject', written).value, 'CN=alice, O=Example', written);
  for (const bad of ['', 'alice', 'CN=alice, Example', '=x']) assert.throws(() => parseBinding('subject', bad), bad);
});
