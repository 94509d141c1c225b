// A real ADMP server on a loopback port for the SDK's tests, which can be restarted
// on the same port and database (a deploy, a crash), and a stand-in proxy in front
// of it that misbehaves on cue (rate limits, a lost answer).
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { wire, type Core } from '../../src/app/server.js';
import { createLogger } from '../../src/log.js';

export interface SdkServer {
  readonly api: TestApi;
  readonly url: string;
  readonly port: number;
  /** Closes the listener (in-flight requests finish); `start()` serves again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startSdkServer(env: Record<string, string> = {}): Promise<SdkServer> {
  const api = await startTestApi(env);
  let core: Core | undefined = api.core;
  const address = await core.app.listen({ host: '127.0.0.1', port: 0 });
  const port = Number(new URL(address).port);
  return {
    api,
    url: address,
    port,
    async stop() {
      await core?.stop();
      core = undefined;
    },
    async start() {
      core = await wire(api.config, api.db, createLogger(api.config.logLevel));
      await core.app.listen({ host: '127.0.0.1', port });
    },
    async close() {
      await core?.stop();
      await api.db.drop();
    },
  };
}

/** What the proxy does with one request: answer it itself, or forward it (and maybe drop the answer). */
export type ProxyRule = (req: IncomingMessage, res: ServerResponse) => 'forward' | 'drop-answer' | 'answered';

export interface Proxy {
  readonly url: string;
  /** Every request that reached the proxy: method, path and headers. */
  readonly seen: { method: string; path: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

export async function startProxy(target: string, rule: ProxyRule): Promise<Proxy> {
  const seen: Proxy['seen'] = [];
  const to = new URL(target);
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method!, path: req.url!, headers: req.headers });
    const what = rule(req, res);
    if (what === 'answered') return;
    const up = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        if (what === 'drop-answer') {
          // The server did the work; the client never hears of it.
          upRes.resume();
          upRes.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(upRes.statusCode!, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
