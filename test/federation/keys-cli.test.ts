// `admp key create|rotate|dns|revoke <agent>` as the CLI (in this process, test/helpers/cli.ts;
// the first `key create` as the real binary) against a test database:
// during a rotation's overlap both keys verify and are published (JWKS and the TXT
// records `key dns` prints); afterwards only the new one is; the outbound worker
// switches to a new key once partners have had time to fetch it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { wire } from '../../src/app/server.js';
import { loadSigningKey, PUBLISH_DELAY_SEC } from '../../src/keys/key-files.js';
import { createTestDatabase } from '../helpers/db.js';
import { addAgent } from '../../src/db/agents.js';
import { admp as admpIn, admpBinary } from '../helpers/cli.js';

const DOMAIN = 'agents.ours.example';
const AGENT = `carol@${DOMAIN}`;

test('key rotate keeps both keys valid for the overlap; key dns and the JWKS show exactly the valid keys; revoke <agent>', async (t) => {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'admp-rotate-'));
  const keysDir = join(dir, 'private');
  t.after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  });
  const env = {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: db.url,
    ADMP_DATA_DIR: dir,
    ADMP_KEYS_DIR: keysDir,
    ADMP_DOMAINS: DOMAIN,
    ADMP_MIGRATE_ON_START: 'false',
  };
  // Resolves with stdout; rejects with stderr when the command fails, as a child process would.
  const admp = async (...args: string[]) => {
    const r = await admpIn(env, ...args);
    if (r.code !== 0) throw new Error(`admp ${args.join(' ')} exited with ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const admpJson = async (...args: string[]) => JSON.parse(await admp(...args, '--json'));
  const config = loadConfig({ DATABASE_URL: db.url, ADMP_DOMAINS: DOMAIN, ADMP_LOG_LEVEL: 'silent' });
  const core = await wire(config, db, createLogger('silent'));
  t.after(() => core.stop());
  const published = async () => {
    const jwks = (await core.app.inject({ url: '/.well-known/agent-keys.json' }))
      .json()
      .keys.map((k: { kid: string }) => k.kid)
      .sort();
    const txt = (await admpJson('key', 'dns', 'carol'))
      .map((r: { text: string }) => /kid=([^;]+);/.exec(r.text)![1])
      .sort();
    assert.deepEqual(txt, jwks, 'the TXT records and the JWKS publish the same keys');
    return jwks as string[];
  };

  await addAgent(db.pool, 'carol', DOMAIN);
  const created = await admpBinary(env, 'key', 'create', 'carol', '--json');
  assert.equal(created.code, 0, created.stderr);
  const first = JSON.parse(created.stdout);
  assert.equal(first.private_key_file, join(keysDir, `${AGENT}.${first.kid}.pem`), 'keys go to ADMP_KEYS_DIR');
  assert.equal(statSync(first.private_key_file).mode & 0o777, 0o600);
  assert.deepEqual(await published(), [first.kid]);

  await assert.rejects(admp('key', 'rotate', 'carol', '--overlap', '10'), /at least 600/);
  // The first key has been in use for a day when it is rotated.
  await db.pool.query(
    "UPDATE agent_key SET not_before = now() - interval '1 day', created_at = now() - interval '1 day' WHERE kid = $1",
    [first.kid],
  );
  const before = Date.now();
  const second = await admpJson('key', 'rotate', AGENT, '--overlap', '3600');
  assert.deepEqual(second.retiring, [first.kid]);
  const until = Date.parse(second.retiring_at);
  assert.ok(until >= before + 3_600_000 && until <= Date.now() + 3_600_000);
  assert.deepEqual(await published(), [first.kid, second.kid].sort(), 'both keys verify during the overlap');
  const zone = await admp('key', 'dns', DOMAIN);
  assert.equal(zone.trim().split('\n').length, 2);
  assert.match(
    zone,
    new RegExp(
      `^_agentkeys\\.${DOMAIN.replace(/\./g, '\\.')}\\. 300 IN TXT "kid=${second.kid}; x=[A-Za-z0-9+/]{43}=; agent=${AGENT}"$`,
      'm',
    ),
  );

  // The worker keeps signing with the old key until the new one has been published long enough.
  const now = new Date();
  assert.equal((await loadSigningKey(db.pool, keysDir, AGENT, now))?.kid, first.kid);
  assert.equal(
    (await loadSigningKey(db.pool, keysDir, AGENT, new Date(now.getTime() + (PUBLISH_DELAY_SEC + 1) * 1000)))?.kid,
    second.kid,
  );

  // After the overlap only the new key is valid and published.
  await db.pool.query("UPDATE agent_key SET not_after = now() - interval '1 second' WHERE kid = $1", [first.kid]);
  assert.deepEqual(await published(), [second.kid]);
  assert.equal((await loadSigningKey(db.pool, keysDir, AGENT, new Date()))?.kid, second.kid);

  const revoked = await admpJson('key', 'revoke', 'carol');
  assert.deepEqual(revoked, { agent: AGENT, revoked: [second.kid] });
  assert.deepEqual(await published(), []);
  assert.equal(await loadSigningKey(db.pool, keysDir, AGENT, new Date()), undefined, 'nothing left to sign with');
  await assert.rejects(admp('key', 'revoke', 'carol'), /no live key of carol@agents\.ours\.example/);
});
