// A private rspamd on 127.0.0.1 for tests: the stock /etc/rspamd config with LOCAL_CONFDIR,
// DBDIR, RUNDIR and LOGDIR redirected into a temp dir, the ADMP plugin files installed the way
// the installer does for Mailcow, every worker on a free loopback port, rspamd's resolver on the
// test DNS server, and the modules that would reach the internet switched off.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, isListening } from './ports.js';

const execFileAsync = promisify(execFile);
const REPO = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const RSPAMD_CONF = '/etc/rspamd/rspamd.conf';

export interface BridgeSettings {
  url: string;
  token: string;
  domain: string;
  timeout: number;
}

/** rspamd/agents_bridge.conf with its placeholders filled, as the installer does. */
export function renderBridgeConfig(s: BridgeSettings): string {
  const values: Record<string, string> = {
    ADMP_BRIDGE_URL: s.url,
    ADMP_INGRESS_TOKEN: s.token,
    ADMP_AGENTS_DOMAIN: s.domain,
    ADMP_BRIDGE_TIMEOUT: String(s.timeout),
  };
  return readFileSync(join(REPO, 'rspamd', 'agents_bridge.conf'), 'utf8').replace(
    /@(ADMP_[A-Z_]+)@/g,
    (m, k: string) => values[k] ?? m,
  );
}

/** The marked rspamd.conf.local block documented in rspamd/README.md (so the docs are what is tested). */
export function rspamdConfLocalBlock(): string {
  const readme = readFileSync(join(REPO, 'rspamd', 'README.md'), 'utf8');
  const m = /^# >>> admp-bridge BEGIN[^\n]*\n[\s\S]*?^# <<< admp-bridge END\n/m.exec(readme);
  if (!m) throw new Error('rspamd/README.md lost its rspamd.conf.local block');
  return m[0];
}

/**
 * Installs the shipped files into a LOCAL_CONFDIR laid out like Mailcow's data/conf/rspamd.
 * `pluginConfig` is the body of local.d/agents_bridge.conf; null leaves the file out.
 */
export function installPlugin(localConfDir: string, pluginConfig: string | null): void {
  for (const d of ['plugins.d', 'local.d', 'override.d']) mkdirSync(join(localConfDir, d), { recursive: true });
  copyFileSync(join(REPO, 'rspamd', 'agents_bridge.lua'), join(localConfDir, 'plugins.d', 'agents_bridge.lua'));
  copyFileSync(join(REPO, 'rspamd', 'actions.conf'), join(localConfDir, 'override.d', 'actions.conf'));
  if (pluginConfig !== null) writeFileSync(join(localConfDir, 'local.d', 'agents_bridge.conf'), pluginConfig);
  appendFileSync(join(localConfDir, 'rspamd.conf.local'), `\n${rspamdConfLocalBlock()}`);
}

export interface RspamdPorts {
  normal: number;
  proxy: number;
  controller: number;
}

// Modules that look things up on the internet or need Redis; off, so that tests are fast and
// local. fuzzy_check must be off: it resolves its servers with getaddrinfo (the system resolver)
// even in configtest.
const OFF_MODULES = [
  'fuzzy_check',
  'rbl',
  'phishing',
  'asn',
  'whitelist',
  'multimap',
  'url_redirector',
  'mx_check',
  'emails',
  'reputation',
  'neural',
  'ratelimit',
  'greylist',
  'history_redis',
  'replies',
  'dynamic_conf',
];

/** Writes the loopback-only workers, the resolver pointing at `dns`, and the disabled modules. */
export function writeSafetyConfig(localConfDir: string, ports: RspamdPorts, dns: string, taskTimeout = '25s'): void {
  const files: Record<string, string> = {
    'override.d/worker-normal.inc': `bind_socket = "127.0.0.1:${ports.normal}";\ncount = 1;\ntask_timeout = ${taskTimeout};\n`,
    // Mailcow's proxy: milter mode in front of the normal worker.
    'override.d/worker-proxy.inc':
      `bind_socket = "127.0.0.1:${ports.proxy}";\nmilter = yes;\ntimeout = 120s;\ncount = 1;\n` +
      `upstream "local" {\n  default = yes;\n  hosts = "127.0.0.1:${ports.normal}";\n}\n` +
      'discard_on_reject = false;\nquarantine_on_reject = false;\nreject_message = "This message does not meet our delivery requirements";\n',
    'override.d/worker-controller.inc': `bind_socket = "127.0.0.1:${ports.controller}";\ncount = 1;\nsecure_ip = "127.0.0.1";\n`,
    'override.d/worker-fuzzy.inc': 'count = -1;\n',
    'override.d/options.inc':
      `dns {\n  nameserver = ["${dns}"];\n  timeout = 1s;\n  retransmits = 1;\n}\n` +
      'soft_reject_on_timeout = true;\n' +
      `hs_cache_dir = "${hyperscanCache()}";\n`,
  };
  for (const m of OFF_MODULES) files[`local.d/${m}.conf`] = 'enabled = false;\n';
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(localConfDir, path)), { recursive: true });
    writeFileSync(join(localConfDir, path), text);
  }
}

/**
 * One hyperscan cache for every test rspamd on this machine, kept between runs. Stock rspamd
 * keeps it in DBDIR, which is a fresh temp dir per test rspamd: each start compiled every
 * regexp class again, 14–15 s of one core before the workers answered. With the cache, a start
 * takes about 1 s. Sharing is safe: a file's name is the hash of its regexps and of the
 * hyperscan build, rspamd writes each under a per-process temporary name and renames it, and
 * a file that does not load is compiled again.
 */
function hyperscanCache(): string {
  const dir = join(tmpdir(), 'admp-rspamd-hs-cache');
  mkdirSync(dir, { recursive: true });
  execFileSync('chown', ['_rspamd:_rspamd', dir]);
  return dir;
}

function vars(dir: string): string[] {
  return [
    `--var=LOCAL_CONFDIR=${join(dir, 'local')}`,
    `--var=DBDIR=${join(dir, 'db')}`,
    `--var=RUNDIR=${join(dir, 'run')}`,
    `--var=LOGDIR=${join(dir, 'log')}`,
  ];
}

/** Creates `<dir>/{local,db,run,log}`, the last three writable by the _rspamd user. */
function makeDirs(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755); // rspamd's workers run as _rspamd and read the config from here
  for (const d of ['local', 'db', 'run', 'log']) mkdirSync(join(dir, d));
  return dir;
}

async function chownToRspamd(dir: string): Promise<void> {
  await execFileAsync('chown', ['-R', '_rspamd:_rspamd', join(dir, 'db'), join(dir, 'run'), join(dir, 'log')]);
}

export interface RspamadmResult {
  code: number;
  output: string;
}

/** Runs `rspamadm <args>` against the config in `dir` (as made by startRspamd or rspamadmDir). */
export async function rspamadm(dir: string, args: string[]): Promise<RspamadmResult> {
  try {
    const { stdout, stderr } = await execFileAsync('rspamadm', [...vars(dir), ...args, '-c', RSPAMD_CONF], {
      timeout: 60_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** A temp rspamd directory for rspamadm only: `fill(localConfDir)` writes the config. Remove with rmSync. */
export async function rspamadmDir(fill: (localConfDir: string) => void): Promise<string> {
  const dir = makeDirs('admp-rspamadm-');
  fill(join(dir, 'local'));
  await chownToRspamd(dir);
  return dir;
}

export interface RspamdOptions {
  /** Body of local.d/agents_bridge.conf (see renderBridgeConfig); null: the file is absent. */
  pluginConfig: string | null;
  /** The test DNS server, `127.0.0.1:port`. */
  dns: string;
  /** Extra files under LOCAL_CONFDIR, path → content (e.g. a test prefilter in `rspamd.local.lua`). */
  extraLocal?: Record<string, string>;
  taskTimeout?: string;
}

export interface TestRspamd {
  readonly dir: string;
  readonly ports: RspamdPorts;
  /** Postfix's `smtpd_milters` value for the proxy worker. */
  readonly milter: string;
  log(): string;
  stop(): Promise<void>;
}

export async function startRspamd(options: RspamdOptions): Promise<TestRspamd> {
  const dir = makeDirs('admp-rspamd-');
  const local = join(dir, 'local');
  const ports: RspamdPorts = { normal: await freePort(), proxy: await freePort(), controller: await freePort() };
  writeSafetyConfig(local, ports, options.dns, options.taskTimeout);
  installPlugin(local, options.pluginConfig);
  for (const [path, text] of Object.entries(options.extraLocal ?? {})) {
    mkdirSync(dirname(join(local, path)), { recursive: true });
    writeFileSync(join(local, path), text);
  }
  await chownToRspamd(dir);
  const logFile = join(dir, 'log', 'rspamd.log');
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  // -f: stay in the foreground (no pidfile, no daemonising), so this child is the main process.
  const child = spawn('rspamd', ['-f', '-u', '_rspamd', '-g', '_rspamd', '-c', RSPAMD_CONF, ...vars(dir)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const stop = async (): Promise<void> => {
    await stopChild(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(ports, child);
  } catch (err) {
    const tail = `${stderr}\n${log().split('\n').slice(-30).join('\n')}`;
    await stop();
    throw new Error(`${(err as Error).message}\n${tail}`);
  }
  return { dir, ports, milter: `inet:127.0.0.1:${ports.proxy}`, log, stop };
}

// The first start on a machine compiles the hyperscan cache (about 15 s); later ones take about 1 s.
async function waitReady(ports: RspamdPorts, child: ChildProcess): Promise<void> {
  // Its start compiles the TLD list and every Lua plugin: seconds on a quiet machine, minutes on a loaded one.
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`rspamd exited with ${child.exitCode}`);
    // The proxy speaks the milter protocol, not HTTP: a TCP connect is its readiness signal.
    const [normal, proxy] = await Promise.all([ping(ports.normal), isListening(ports.proxy)]);
    if (normal && proxy) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('rspamd did not answer /ping within 300 s');
}

async function ping(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(1000) });
    return (await r.text()).trim() === 'pong';
  } catch {
    return false;
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM'); // the main process stops its workers
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
