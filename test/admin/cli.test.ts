// `admp admin token create|list|revoke`, run as the real CLI against a test database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createTestDatabase } from '../helpers/db.js';
import { adminTokenBySecret } from '../../src/db/admin-tokens.js';

const run = promisify(execFile);
const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;

test('admin tokens: created once in the clear, listed without the secret, revoked at once', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const env = { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, ADMP_MIGRATE_ON_START: 'false' };
  const admp = async (...args: string[]) =>
    (await run(process.execPath, ['--import', 'tsx', main, ...args], { env })).stdout;

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
  const again = await run(process.execPath, ['--import', 'tsx', main, 'admin', 'token', 'revoke', String(rw.id)], {
    env,
  }).catch((e: { code: number; stderr: string }) => e);
  assert.equal((again as { code: number }).code, 1);
  assert.match((again as { stderr: string }).stderr, /no live admin token/);
  const badName = await run(process.execPath, ['--import', 'tsx', main, 'admin', 'token', 'create', '--name', '<x>'], {
    env,
  }).catch((e: { code: number }) => e);
  assert.equal((badName as { code: number }).code, 64);
});
