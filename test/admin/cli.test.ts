// `admp admin token create|list|revoke`, run as the CLI (in this process, test/helpers/cli.ts;
// the failing revoke also as the real binary) against a test database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { adminTokenBySecret } from '../../src/db/admin-tokens.js';
import { admp as admpIn, admpBinary } from '../helpers/cli.js';

test('admin tokens: created once in the clear, listed without the secret, revoked at once', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const env = { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, ADMP_MIGRATE_ON_START: 'false' };
  const admp = async (...args: string[]) => {
    const r = await admpIn(env, ...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  const rw = JSON.parse(await admp('admin', 'token', 'create', '--name', 'night shift', '--json'));
  const ro = JSON.parse(await admp('admin', 'token', 'create', '--read-only', '--json'));
  assert.match(rw.token, /^admpadm_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual([rw.name, rw.read_only, ro.name, ro.read_only], ['night shift', false, 'operator', true]);
  assert.equal((await adminTokenBySecret(db.pool, ro.token))?.id, ro.id);

  const listed = await admp('admin', 'token', 'list');
  assert.match(listed, /night shift/);
  assert.ok(!listed.includes(rw.token), 'the list never shows a token');

  assert.match(await admp('admin', 'token', 'revoke', String(rw.id)), /revoked/);
  assert.equal(await adminTokenBySecret(db.pool, rw.token), undefined);
  for (const cli of [admpBinary, admpIn]) {
    const again = await cli(env, 'admin', 'token', 'revoke', String(rw.id));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^admp: no live admin token/);
  }
  const badName = await admpIn(env, 'admin', 'token', 'create', '--name', '<x>');
  assert.equal(badName.code, 64, 'EX_USAGE');
  assert.equal(badName.stdout, '');
});
