// A private Docker engine for tests: dockerd with its own data root, exec root and unix
// socket in a temp dir. By default it has no networking of its own (--bridge=none, no
// iptables, forwarding or masquerading), so the host's network is left as it was. With
// `netns`, it runs in a network namespace of its own (ip netns), where it may create bridge
// networks, iptables rules and published ports: all of them exist only in that namespace.
// Images cannot be pulled here; importRootfs() makes one from local files (busybox-static).
import { execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';

const run = promisify(execFile);

export interface TestDockerd {
  readonly docker: Dockerode;
  /** unix:// URL for DOCKER_HOST. */
  readonly host: string;
  readonly dir: string;
  /** The engine's network namespace (`ip netns exec <netns> …` reaches its containers), or null. */
  readonly netns: string | null;
  stop(): Promise<void>;
}

const ISOLATED = ['--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false'];

export interface DockerdOptions {
  /** Its own network namespace (bridge networks, published ports), see the top. */
  readonly netns?: boolean;
  /** A data root (images, build cache) that outlives the engine, instead of one in its temp dir. */
  readonly dataRoot?: string;
}

export async function startDockerd(opts: DockerdOptions = {}): Promise<TestDockerd> {
  // Short path: unix socket paths are limited to 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'admp-dkr-'));
  const root = opts.dataRoot ?? join(dir, 'root');
  const socket = join(dir, 'docker.sock');
  const log = createWriteStream(join(dir, 'dockerd.log'));
  const netns = opts.netns ? `admp-${dir.split('-').pop()}` : null;
  if (netns) {
    await run('ip', ['netns', 'add', netns]);
    await run('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
  }
  // nsenter enters the network namespace only: `ip netns exec` would also mount a new /sys,
  // hiding the cgroup mounts dockerd needs.
  const child = spawn(
    netns ? 'nsenter' : 'dockerd',
    [
      ...(netns ? [`--net=/run/netns/${netns}`, 'dockerd'] : []),
      '--data-root',
      root,
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '-H',
      `unix://${socket}`,
      ...(netns ? ['--bridge=none'] : ISOLATED),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const spawnFailed = new Promise<Error>((ok) => child.once('error', ok));
  const docker = new Dockerode({ socketPath: socket });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((ok) => setTimeout(ok, 15_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    // dockerd leaves its default network namespace mounted.
    await run('umount', [join(dir, 'exec', 'netns', 'default')]).catch(() => undefined);
    if (netns) await run('ip', ['netns', 'del', netns]).catch(() => undefined);
    // rm(1): far faster than rmSync on the tens of thousands of files of image layers.
    await run('rm', ['-rf', dir]).catch(() => rmSync(dir, { recursive: true, force: true }));
  };
  for (let i = 0; ; i++) {
    const failed = await Promise.race([spawnFailed, Promise.resolve(null)]);
    if (failed) throw new Error(`cannot start dockerd: ${failed.message}`);
    if (child.exitCode !== null) {
      if (netns) await run('ip', ['netns', 'del', netns]).catch(() => undefined);
      throw new Error(`dockerd exited (${child.exitCode}); see ${join(dir, 'dockerd.log')}`);
    }
    if (
      await docker.ping().then(
        () => true,
        () => false,
      )
    )
      break;
    if (i > 150) {
      await stop();
      throw new Error('dockerd did not answer within 30 s');
    }
    await new Promise((ok) => setTimeout(ok, 200));
  }
  return { docker, host: `unix://${socket}`, dir, netns, stop };
}

/**
 * Imports an image whose root holds busybox (with the applets `applets` as symlinks)
 * and `files` (path → content, executable), via `docker import` of a tar made with tar(1).
 */
export async function importRootfs(
  docker: Dockerode,
  tag: string,
  applets: readonly string[],
  files: Record<string, string>,
): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'admp-rootfs-'));
  try {
    mkdirSync(join(root, 'bin'));
    copyFileSync('/usr/bin/busybox', join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
    for (const d of ['tmp', 'etc', 'proc', 'sys', 'dev']) mkdirSync(join(root, d), { recursive: true });
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), content, { mode: 0o755 });
    }
    const tar = join(tmpdir(), `admp-rootfs-${process.pid}.tar`);
    await run('tar', ['-C', root, '-cf', tar, '.']);
    const [repo, version] = tag.split(':');
    const stream = await docker.importImage(tar, { repo, tag: version ?? 'latest' });
    await new Promise<void>((ok, fail) =>
      docker.modem.followProgress(stream, (err: Error | null) => (err ? fail(err) : ok())),
    );
    rmSync(tar, { force: true });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
