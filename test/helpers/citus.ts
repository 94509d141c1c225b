// A Citus cluster on loopback for the Citus test mode and the bench: a coordinator and
// workers, each a PostgreSQL 15 server from Debian's packages (Citus is built for that
// version, see .ci/run), in temp directories on free ports, with trust authentication
// (loopback only). Citus metadata is per database, so every database the tests use is
// created on every node with the extension, and the nodes are registered in it.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';

export const PG15_BIN = '/usr/lib/postgresql/15/bin';

/** Why the Citus tests cannot run here, or undefined when they can. */
export function citusMissing(): string | undefined {
  const config = join(PG15_BIN, 'pg_config');
  if (!existsSync(config)) return 'needs Debian postgresql-15 (/usr/lib/postgresql/15)';
  const run = (arg: string) => execFileSync(config, [arg], { encoding: 'utf8' }).trim();
  if (!existsSync(join(run('--pkglibdir'), 'citus.so')))
    return 'needs Citus in PostgreSQL 15 (bash ../shared/vendor/citus/build.sh; .ci/run builds it)';
  if (!/default_version = '13\./.test(readFileSync(join(run('--sharedir'), 'extension/citus.control'), 'utf8')))
    return 'needs Citus 13 in PostgreSQL 15';
  return undefined;
}

export interface CitusNode {
  readonly host: string;
  readonly port: number;
}

export interface CitusCluster {
  readonly coordinator: CitusNode;
  readonly workers: CitusNode[];
  /** postgres://… of a database on a node (the maintenance database `postgres` by default). */
  url(node: CitusNode, database?: string): string;
  /** Starts one more worker (not yet registered in any database). */
  startWorker(): Promise<CitusNode>;
  stop(): Promise<void>;
}

const USER = 'admp';

/** The uid/gid PostgreSQL runs as: it refuses root, so Debian's `postgres` user when we are root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function pgRun(bin: string, args: string[]): void {
  const who = runAs();
  // HOME: libpq in the servers (Citus's connections between nodes) reads ~/.postgresql.
  const env = { ...process.env, LC_ALL: 'C', HOME: tmpdir() };
  const r = spawnSync(join(PG15_BIN, bin), args, { encoding: 'utf8', ...who, env });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error}`);
}

async function startNode(root: string, name: string, settings: Record<string, string>): Promise<CitusNode> {
  const dir = join(root, name);
  const port = await freePort();
  pgRun('initdb', ['-D', dir, '-U', USER, '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const conf = {
    port: String(port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${root}'`,
    shared_preload_libraries: "'citus'",
    // Loopback between nodes of one machine: no TLS.
    'citus.node_conninfo': "'sslmode=disable'",
    max_connections: '200',
    shared_buffers: "'64MB'",
    // Test data is thrown away: no durability, less I/O on a shared machine (the bench
    // turns these back on).
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...settings,
  };
  writeFileSync(
    join(dir, 'postgresql.conf'),
    Object.entries(conf)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join(''),
    { flag: 'a' },
  );
  pgRun('pg_ctl', ['-D', dir, '-l', join(root, `${name}.log`), '-w', '-t', '60', 'start']);
  return { host: '127.0.0.1', port };
}

/**
 * Starts a coordinator and `workers` workers. Fewer shards than Citus's default 32
 * (`shardCount`) keep the DDL of each test database short; every statement is still
 * spread over both workers. `settings` go to every node's postgresql.conf, last.
 */
export async function startCitusCluster(
  options: { workers?: number; shardCount?: number; settings?: Record<string, string> } = {},
): Promise<CitusCluster> {
  const root = mkdtempSync(join(tmpdir(), 'admp-citus-'));
  chmodSync(root, 0o755);
  const who = runAs();
  if (who) chownSync(root, who.uid, who.gid);
  const settings = { 'citus.shard_count': String(options.shardCount ?? 8), ...options.settings };
  const names: string[] = [];
  let n = 0;
  const start = async (name: string) => {
    names.push(name);
    return startNode(root, name, settings);
  };
  try {
    const coordinator = await start('coordinator');
    const workers: CitusNode[] = [];
    for (let i = 0; i < (options.workers ?? 2); i++) workers.push(await start(`worker${++n}`));
    return {
      coordinator,
      workers,
      url: (node, database = 'postgres') => `postgres://${USER}@${node.host}:${node.port}/${database}`,
      async startWorker() {
        const w = await start(`worker${++n}`);
        workers.push(w);
        return w;
      },
      async stop() {
        for (const name of names)
          try {
            pgRun('pg_ctl', ['-D', join(root, name), '-m', 'immediate', '-w', 'stop']);
          } catch {
            // already stopped
          }
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const name of names)
      try {
        pgRun('pg_ctl', ['-D', join(root, name), '-m', 'immediate', '-w', 'stop']);
      } catch {
        // not started
      }
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

async function onNode(url: string, fn: (c: pg.Client) => Promise<void>): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Creates `name` on the coordinator and every worker with the citus extension, and
 * registers the workers (and the coordinator, so it may hold reference table copies) in it.
 */
export async function createCitusDatabase(
  coordinatorAdminUrl: string,
  workerAdminUrls: readonly string[],
  name: string,
): Promise<void> {
  const inDb = (url: string) => Object.assign(new URL(url), { pathname: `/${name}` }).toString();
  for (const url of workerAdminUrls) {
    await onNode(url, (c) => c.query(`CREATE DATABASE ${name}`).then(() => undefined));
    await onNode(inDb(url), (c) => c.query('CREATE EXTENSION citus').then(() => undefined));
  }
  await onNode(coordinatorAdminUrl, (c) => c.query(`CREATE DATABASE ${name}`).then(() => undefined));
  const coord = new URL(coordinatorAdminUrl);
  await onNode(inDb(coordinatorAdminUrl), async (c) => {
    await c.query('CREATE EXTENSION citus');
    await c.query('SELECT citus_set_coordinator_host($1, $2)', [coord.hostname, Number(coord.port)]);
    for (const url of workerAdminUrls) {
      const w = new URL(url);
      await c.query('SELECT citus_add_node($1, $2)', [w.hostname, Number(w.port)]);
    }
  });
}

/**
 * Freezes `name` as a template: no connections (Citus's maintenance daemon included), so
 * CREATE DATABASE … TEMPLATE may copy it. A copy made on every node is a complete
 * distributed database: the coordinator's metadata names the same nodes and shards.
 */
export async function freezeTemplate(adminUrls: readonly string[], name: string): Promise<void> {
  for (const url of adminUrls)
    await onNode(url, async (c) => {
      await c.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
    });
}

/** Copies the template on every node at once (FILE_COPY: a file copy, cheaper here than WAL_LOG). */
export async function copyTemplate(adminUrls: readonly string[], template: string, name: string): Promise<void> {
  await Promise.all(
    adminUrls.map((url) =>
      onNode(url, (c) =>
        c.query(`CREATE DATABASE ${name} TEMPLATE ${template} STRATEGY FILE_COPY`).then(() => undefined),
      ),
    ),
  );
}

/**
 * Drops `name` on every node. WITH (FORCE) does not end Citus's maintenance daemon, so
 * connections are refused first and every session, the daemon's included, is ended.
 */
export async function dropDatabaseOnNodes(adminUrls: readonly string[], name: string): Promise<void> {
  for (const url of adminUrls)
    await onNode(url, async (c) => {
      const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (exists.rowCount === 0) return;
      await c.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    });
}
