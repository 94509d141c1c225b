// `admp serve` as a child process, so the load generator in this process does not
// share the server's event loop. Logs at warn: request logging would measure pino.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { freePort } from '../src/db/embedded.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export interface ServerChild {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export function serverEnv(databaseUrl: string, port: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: databaseUrl,
    ADMP_HTTP_LISTEN: `127.0.0.1:${port}`,
    ADMP_LMTP_LISTEN: '', // not measured; and its default port may be taken on a shared box
    ADMP_METRICS_LISTEN: '', // the same
    ADMP_LOG_LEVEL: 'warn',
    ADMP_DOMAINS: 'agents.bench',
    // Counted on every call as in production, but a few bench agents drive the whole load.
    ADMP_API_RATE_LIMIT: '1000000000',
    ADMP_API_RATE_WINDOW_SEC: '1',
    ...extra,
  };
}

/** Certificate files for HTTPS (ADMP_HTTP_TLS_CERT/KEY) and the CA that signed them. */
export interface ServerTls {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** Whether /readyz answers 200; over HTTPS trusting `tls.ca` only. */
async function isReady(url: string, tls: ServerTls | undefined): Promise<boolean> {
  if (!tls)
    return fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
  const dispatcher = new Agent({ connect: { ca: readFileSync(tls.ca) } });
  try {
    const r = await request(`${url}/readyz`, { dispatcher });
    await r.body.dump();
    return r.statusCode === 200;
  } catch {
    return false;
  } finally {
    await dispatcher.close();
  }
}

/** `root`: the checkout to run (another one, to compare a proposed change side by side). */
export async function startServer(
  databaseUrl: string,
  extraEnv: NodeJS.ProcessEnv,
  log: (line: string) => void,
  root = ROOT,
  tls?: ServerTls,
): Promise<ServerChild> {
  const port = await freePort();
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  if (tls) extraEnv = { ...extraEnv, ADMP_HTTP_TLS_CERT: tls.cert, ADMP_HTTP_TLS_KEY: tls.key };
  // e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: root,
    env: serverEnv(databaseUrl, port, extraEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forward = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter(Boolean)
      .forEach((l) => log(`[admp serve] ${l}`));
  child.stdout!.on('data', forward);
  child.stderr!.on('data', forward);
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`admp serve exited with code ${child.exitCode} before it was ready`);
    if (await isReady(url, tls)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`admp serve not ready after ${READY_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
