// `admp key create|import|list|revoke` and `admp sign`, run as the CLI (in this process,
// test/helpers/cli.ts; its first command as the real binary) against a test database; the
// .eml `admp sign` writes verifies with the key `key create` stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { publicKeyFromSeed } from '../../src/core/signature.js';
import { createKeyResolver } from '../../src/keys/resolver.js';
import { seedFromPem } from '../../src/keys/private-key.js';
import { createTestDatabase } from '../helpers/db.js';
import { addAgent } from '../../src/db/agents.js';
import { outcome, verifyEml } from '../signature/verify-eml.js';
import { admp as admpIn, admpBinary, type CliResult } from '../helpers/cli.js';

test('key create → sign → verify; import, list, revoke', async (t) => {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'admp-keys-'));
  t.after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  });
  const env = {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: db.url,
    ADMP_DATA_DIR: dir,
    ADMP_DOMAINS: 'agents.ours.example',
    ADMP_MIGRATE_ON_START: 'false',
  };
  const admp = async (...args: string[]) => {
    const r = await admpIn(env, ...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const failed = (args: string[], r: CliResult) => {
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    assert.equal(r.stdout, '', 'a failure prints nothing on stdout');
    return r;
  };
  const admpFails = async (...args: string[]) => failed(args, await admpIn(env, ...args));

  // A key for an agent that does not exist is refused, with what to do (the real binary's
  // exit status and stderr line; the same from the in-process CLI).
  for (const cli of [admpBinary, admpIn])
    assert.match(
      failed(['key', 'create', 'carol'], await cli(env, 'key', 'create', 'carol')).stderr,
      /^admp: no agent carol@agents\.ours\.example: add it first/,
    );
  await addAgent(db.pool, 'carol', 'agents.ours.example');
  const created = JSON.parse(await admp('key', 'create', 'carol', '--json'));
  assert.equal(created.agent, 'carol@agents.ours.example');
  assert.equal(created.private_key_file, join(dir, 'keys', `carol@agents.ours.example.${created.kid}.pem`));
  assert.equal(statSync(created.private_key_file).mode & 0o777, 0o600);
  const seed = seedFromPem(readFileSync(created.private_key_file, 'utf8'));
  assert.equal(Buffer.from(publicKeyFromSeed(seed)).toString('base64'), created.public_key);
  assert.deepEqual(created.dns_txt, {
    name: '_agentkeys.agents.ours.example',
    text: `kid=${created.kid}; x=${created.public_key}; agent=carol@agents.ours.example`,
  });
  const { rows } = await db.pool.query(
    'SELECT agent, source, public_key FROM agent_key WHERE domain = $1 AND kid = $2',
    ['agents.ours.example', created.kid],
  );
  assert.deepEqual(
    rows.map((r) => [r.agent, r.source, r.public_key.toString('base64')]),
    [['carol@agents.ours.example', 'local', created.public_key]],
  );
  assert.match((await admpFails('key', 'create', 'carol@agents.a.example')).stderr, /not one of our domains/);

  writeFileSync(join(dir, 'body.json'), '{"q": "2026-Q1"}');
  const out = join(dir, 'm.eml');
  const signed = JSON.parse(
    await admp(
      'sign',
      '--agent',
      'carol@agents.ours.example',
      '--key',
      created.private_key_file,
      '--kid',
      created.kid,
      '--to',
      'dave@agents.ours.example',
      '--type',
      'task.request',
      '--subject',
      'Zahlen bitte',
      '--body',
      `@${join(dir, 'body.json')}`,
      '--out',
      out,
      '--json',
    ),
  );
  assert.match(signed.message_id, /^<[0-9a-f-]{36}@agents\.ours\.example>$/);
  const config = loadConfig({}, { domains: 'agents.ours.example' });
  // The resolver keeps a key it found for 5 s (src/keys/resolver.ts): its clock is moved past that below.
  let later = 0;
  const resolveKey = createKeyResolver(config, { db: db.pool, now: () => Date.now() + later });
  const verify = (eml: Buffer | string) =>
    verifyEml(eml, {
      rcpt: 'dave@agents.ours.example',
      now: Math.floor(Date.now() / 1000),
      clockSkewSec: config.clockSkewSec,
      resolveKey,
    });
  const r = await verify(readFileSync(out));
  assert.equal(r.ok && r.keySource, 'local', JSON.stringify(r));
  const printed = await admp(
    'sign',
    '--agent',
    'carol@agents.ours.example',
    '--key',
    created.private_key_file,
    '--kid',
    created.kid,
    '--to',
    'dave@agents.ours.example',
    '--type',
    'ping',
    '--body',
    '{"n":1}',
    '--validity-sec',
    '600',
  );
  const expires = Number(/^X-Agent-Expires: (\d+)\r$/m.exec(printed)?.[1]);
  assert.ok(Math.abs(expires - 600 - Math.floor(Date.now() / 1000)) < 60, 'X-Agent-Expires: now + 600');
  assert.equal(outcome(await verify(printed)), 'ok');
  assert.match(
    (
      await admpFails(
        'sign',
        '--agent',
        'carol@agents.ours.example',
        '--key',
        created.private_key_file,
        '--kid',
        created.kid,
        '--to',
        'dave@agents.ours.example',
        '--type',
        'ping',
        '--body',
        '{not json',
      )
    ).stderr,
    /not JSON/,
  );

  const partnerKey = Buffer.from(publicKeyFromSeed(Buffer.alloc(32, 5))).toString('base64');
  const pinned = JSON.parse(await admp('key', 'import', 'Alice@Agents.A.Example', 'a1', partnerKey, '--json'));
  assert.deepEqual(
    [pinned.agent, pinned.domain, pinned.kid, pinned.source, pinned.public_key],
    ['alice@agents.a.example', 'agents.a.example', 'a1', 'pinned', partnerKey],
  );
  assert.match((await admpFails('key', 'import', 'x@agents.a.example', 'a2', 'AAAA')).stderr, /32 bytes/);
  assert.match((await admpFails('key', 'import', 'x@agents.ours.example', 'a2', partnerKey)).stderr, /our domain/);

  // A kid is a base64url thumbprint: one in 64 begins with '-', which only '--' keeps from being read as an option.
  await admp('key', 'revoke', '--', 'agents.ours.example', created.kid);
  const listed = JSON.parse(await admp('key', 'list', '--json')) as { kid: string; source: string; state: string }[];
  assert.deepEqual(
    listed.map((k) => [k.kid, k.source, k.state]).sort(),
    [
      ['a1', 'pinned', 'valid'],
      [created.kid, 'local', 'revoked'],
    ].sort(),
  );
  assert.match(await admp('key', 'list'), /^agent\s+kid\s+source\s+state/);
  later = 5000;
  assert.equal(
    outcome(await verify(readFileSync(out))),
    'unknown_key',
    'a revoked key no longer verifies once the 5 s a found key is kept have passed',
  );
});
