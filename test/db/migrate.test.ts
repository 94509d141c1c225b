import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from '../helpers/db.js';
import { migrate, pendingMigrations, loadMigrations } from '../../src/db/migrate.js';

test('migrations apply once; running twice, or concurrently, is harmless', async (t) => {
  const db = await createTestDatabase({ migrate: false });
  t.after(() => db.drop());
  const all = await loadMigrations();
  assert.deepEqual(
    await pendingMigrations(db.pool),
    all.map((m) => m.name),
  );
  const results = await Promise.all([migrate(db.pool), migrate(db.pool), migrate(db.pool)]);
  // Exactly one of the three concurrent runs applied each migration.
  assert.deepEqual(results.flat().sort(), all.map((m) => m.name).sort());
  assert.deepEqual(await migrate(db.pool), []);
  assert.deepEqual(await pendingMigrations(db.pool), []);
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM schema_migration');
  assert.equal(rows[0].n, all.length);
});

test('every unique index on message and message_dedupe includes to_agent_id (partitioning by to_agent_id stays possible)', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const { rows } = await db.pool.query<{ indexdef: string }>(
    "SELECT indexdef FROM pg_indexes WHERE tablename IN ('message', 'message_dedupe') AND indexdef LIKE 'CREATE UNIQUE%'",
  );
  assert.equal(rows.length, 2);
  for (const r of rows) assert.match(r.indexdef, /to_agent_id/, r.indexdef);
});
