// A connection lost while the pool sets it up (after PostgreSQL accepted the login, before
// the pool lends the client out: plan_cache_mode is being set) fails that one query as a
// storage fault and the process goes on. An 'error' event nobody listened to used to end
// the server here: a frozen database made the pool's connect timeout destroy such a socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { createPool } from '../../src/db/pool.js';
import { toAdmpError } from '../../src/errors.js';
import { createTestDatabase } from '../helpers/db.js';

/** A relay to PostgreSQL that cuts the first connection when its client sends `marker`. */
async function cuttingRelay(databaseUrl: string, marker: string) {
  const target = new URL(databaseUrl);
  const sockets: Socket[] = [];
  let cut = 0;
  const relay = createServer((client) => {
    const server = connect(Number(target.port), '127.0.0.1');
    sockets.push(client, server);
    const first = sockets.length === 2;
    server.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (first && chunk.includes(marker)) {
        cut++;
        client.destroy();
        server.destroy();
      } else server.write(chunk);
    });
  });
  await new Promise<void>((ok) => relay.listen(0, '127.0.0.1', ok));
  const url = new URL(databaseUrl);
  url.port = String((relay.address() as { port: number }).port);
  return {
    url: url.toString(),
    cuts: () => cut,
    close: () => {
      for (const s of sockets) s.destroy();
      relay.close();
    },
  };
}

test('a connection cut while the pool sets it up fails that query as a storage fault; the next one works', async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const relay = await cuttingRelay(db.url, 'plan_cache_mode');
  t.after(() => relay.close());
  const pool = createPool(relay.url, 2, { statementMs: 5000, lockMs: 1000 });
  t.after(() => pool.end());

  const failed = await pool.query('SELECT 1').then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.equal(relay.cuts(), 1, 'the relay cut the connection while plan_cache_mode was being set');
  assert.ok(failed instanceof Error, 'the query on the cut connection failed');
  assert.equal(toAdmpError(failed).code, 'storage_unavailable', String(failed));
  const { rows } = await pool.query<{ mode: string }>("SELECT current_setting('plan_cache_mode') AS mode");
  assert.equal(rows[0]?.mode, 'force_generic_plan');
  assert.equal(pool.totalCount, 1, 'the cut client was dropped, the new one kept');
});
