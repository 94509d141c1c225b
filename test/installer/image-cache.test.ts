// The CI cache (ADMP_CI_CACHE) gains an image tar or a Docker data root whenever their inputs
// change; pruneCache removes the old ones that nothing uses, and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pruneCache } from '../helpers/images.js';

test('pruneCache keeps the newest entry, the recently used, the locked, the half-written and other kinds', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'admp-cache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const usedDaysAgo = (name: string, days: number, folder = false) => {
    const path = join(dir, name);
    if (folder) mkdirSync(path);
    else writeFileSync(path, 'x');
    const at = new Date(Date.now() - days * 24 * 3600_000);
    utimesSync(path, at, at);
  };
  usedDaysAgo('admp-bridge_latest-aaaa.tar', 3); // unused for 3 days: removed
  usedDaysAgo('admp-bridge_latest-bbbb.tar', 4); // unused for 4 days: removed
  usedDaysAgo('admp-bridge_latest-cccc.tar', 7); // locked by a test run: kept
  mkdirSync(join(dir, 'admp-bridge_latest-cccc.tar.lock'));
  usedDaysAgo('admp-bridge_latest-dddd.tar.tmp-123', 8); // being written: kept
  usedDaysAgo('admp-bridge_latest-eeee', 10, true); // a folder (a data root): removed the same way
  usedDaysAgo('postgres_15-ffff.tar', 30); // another kind: kept
  usedDaysAgo('admp-bridge_latest-gggg.tar', 2); // unused for two days: removed
  usedDaysAgo('admp-bridge_latest-hhhh.tar', 0.9); // not the newest, but used within the day: kept
  usedDaysAgo('admp-bridge_latest-iiii.tar', 0.1); // the newest: kept

  const removed = pruneCache(dir, 'admp-bridge_latest-', 1).map((p) => p.slice(dir.length + 1));
  assert.deepEqual(removed.sort(), [
    'admp-bridge_latest-aaaa.tar',
    'admp-bridge_latest-bbbb.tar',
    'admp-bridge_latest-eeee',
    'admp-bridge_latest-gggg.tar',
  ]);
  assert.deepEqual(readdirSync(dir).sort(), [
    'admp-bridge_latest-cccc.tar',
    'admp-bridge_latest-cccc.tar.lock',
    'admp-bridge_latest-dddd.tar.tmp-123',
    'admp-bridge_latest-hhhh.tar',
    'admp-bridge_latest-iiii.tar',
    'postgres_15-ffff.tar',
  ]);
});
