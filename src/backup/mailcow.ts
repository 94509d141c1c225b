// `admp backup` and `admp restore` of a Mailcow install: pg_dump and pg_restore run inside
// admp-postgres-mailcow (its client always matches its server), the agents' private keys are
// read from and written into the bridge's data volume, all through the Docker Engine API, with
// the containers found by their Compose labels like the installer finds them.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import tar from 'tar-stream';
import type { ContainerRef, Engine } from '../installer/docker-engine.js';
import { BRIDGE_SERVICE, POSTGRES_SERVICE } from '../installer/layout.js';
import { keysFromTar, keysToTar, readArchive, writeArchive, type Manifest } from './archive.js';

/** The override's admp-postgres-mailcow: database and user admp (src/installer/compose-override.ts). */
const DB = ['--username=admp', '--dbname=admp'];
/** The bridge's ADMP_DATA_DIR in the image, and its keys directory (ADMP_KEYS_DIR's default). */
const DATA_DIR = '/app/var';
const KEYS = 'keys';
/** The image's unprivileged `node` user, owner of the keys. */
const NODE_UID = 1000;
const RESTORE_FILE = 'admp-restore.dump';

export type Say = (line: string) => void;

const mib = (n: number): string => (n / 1048576).toFixed(1);
const since = (t: number): string => `${((Date.now() - t) / 1000).toFixed(1)} s`;

async function container(engine: Engine, project: string, service: string, stopped = false): Promise<ContainerRef> {
  const c = await engine.findService(project, service, { stopped });
  if (!c)
    throw new Error(
      `no ${stopped ? '' : 'running '}container of ${service} in Compose project ${project}` +
        (service === POSTGRES_SERVICE
          ? ' (installed with --database-url? then back up that database with pg_dump)'
          : ''),
    );
  return c;
}

export async function backupMailcow(engine: Engine, project: string, out: string, say: Say): Promise<Manifest> {
  const pg = await container(engine, project, POSTGRES_SERVICE);
  const bridge = await container(engine, project, BRIDGE_SERVICE, true);
  const tmp = await mkdtemp(join(tmpdir(), 'admp-backup-'));
  try {
    const dumpFile = join(tmp, 'database.dump');
    const file = createWriteStream(dumpFile, { mode: 0o600 });
    let bytes = 0;
    const counter = new PassThrough();
    counter.on('data', (c: Buffer) => void (bytes += c.length));
    counter.pipe(file);
    const started = Date.now();
    say('database: pg_dump --format=custom in ' + pg.name);
    const timer = setInterval(() => say(`database: ${mib(bytes)} MiB so far (${since(started)})`), 2000);
    const r = await engine
      .execTo(pg, ['pg_dump', '--format=custom', ...DB], counter)
      .finally(() => clearInterval(timer));
    counter.end();
    await finished(file);
    if (r.exitCode !== 0) throw new Error(`pg_dump in ${pg.name} failed (exit ${r.exitCode}): ${r.output.trim()}`);
    say(`database: ${mib(bytes)} MiB in ${since(started)}`);
    const listing = await engine.readTar(bridge, `${DATA_DIR}/${KEYS}`).catch((err: { statusCode?: number }) => {
      if (err.statusCode === 404) return null; // no key created yet
      throw err;
    });
    const keys = listing ? await keysFromTar(listing) : [];
    say(`keys: ${keys.length} private key file(s) from ${bridge.name}:${DATA_DIR}/${KEYS}`);
    const manifest = await writeArchive(out, dumpFile, keys, new Date());
    say(`wrote ${out} (${mib((await stat(out)).size)} MiB)`);
    return manifest;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A tar holding the one file `name` (streamed: a dump may be large). */
async function singleFileTar(name: string, path: string): Promise<NodeJS.ReadableStream> {
  const pack = tar.pack();
  const entry = pack.entry({ name, size: (await stat(path)).size, mode: 0o600 }, (err) => {
    if (err) pack.destroy(err);
    else pack.finalize();
  });
  createReadStream(path).pipe(entry as unknown as Writable);
  return Readable.from(pack);
}

/**
 * Restores an archive of `backupMailcow`: the bridge is stopped, pg_restore replaces the
 * database's objects in one transaction (all or nothing), the key files are written into the
 * bridge's data volume, and the bridge is started again.
 */
export async function restoreMailcow(engine: Engine, project: string, archive: string, say: Say): Promise<Manifest> {
  const tmp = await mkdtemp(join(tmpdir(), 'admp-restore-'));
  try {
    const dumpFile = join(tmp, 'database.dump');
    const { manifest, keys } = await readArchive(archive, dumpFile);
    say(`archive of ${manifest.created}: database ${mib(manifest.database.bytes)} MiB, ${keys.length} key file(s)`);
    const pg = await container(engine, project, POSTGRES_SERVICE);
    const bridge = await container(engine, project, BRIDGE_SERVICE, true);
    const wasRunning = (await engine.findService(project, BRIDGE_SERVICE)) !== null;
    if (wasRunning) {
      say(`stopping ${bridge.name}`);
      await engine.stop(bridge);
    }
    try {
      await engine.writeTar(pg, '/tmp', await singleFileTar(RESTORE_FILE, dumpFile));
      const started = Date.now();
      say(`database: pg_restore in ${pg.name} (one transaction)`);
      const r = await engine.exec(pg, [
        'pg_restore',
        '--clean',
        '--if-exists',
        '--no-owner',
        '--single-transaction',
        '--exit-on-error',
        ...DB,
        `/tmp/${RESTORE_FILE}`,
      ]);
      await engine.exec(pg, ['rm', '-f', `/tmp/${RESTORE_FILE}`]);
      if (r.exitCode !== 0)
        throw new Error(`pg_restore in ${pg.name} failed (exit ${r.exitCode}), nothing restored: ${r.output.trim()}`);
      say(`database: restored in ${since(started)}`);
      await engine.writeTar(bridge, DATA_DIR, await keysToTar(KEYS, keys, NODE_UID));
      say(`keys: ${keys.length} private key file(s) into ${bridge.name}:${DATA_DIR}/${KEYS}`);
    } finally {
      if (wasRunning) {
        say(`starting ${bridge.name}`);
        await engine.start(bridge);
      }
    }
    return manifest;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
