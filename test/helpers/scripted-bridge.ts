// A scripted stand-in for the bridge's `POST /ingress/rspamd` on 127.0.0.1: it records every
// request and answers as the test says, including the failures a real bridge can show
// (hanging past the plugin's timeout, refusing connections).
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';

export type BridgeAnswer =
  | { status: number; json?: unknown }
  /** Reads the request and never answers. */
  | 'hang'
  /** Stops listening on the port, so connects are refused; the next other answer listens again. */
  | 'refuse';

export interface BridgeRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface ScriptedBridge {
  /** `http://127.0.0.1:<port>/ingress/rspamd`; the port stays the same across `refuse`. */
  readonly url: string;
  readonly requests: BridgeRequest[];
  answer(a: BridgeAnswer): Promise<void>;
  stop(): Promise<void>;
}

export async function startScriptedBridge(
  initial: BridgeAnswer = { status: 200, json: { stored: [] } },
): Promise<ScriptedBridge> {
  const requests: BridgeRequest[] = [];
  const sockets = new Set<Socket>();
  let current: BridgeAnswer = initial;
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(parts),
      });
      if (typeof current !== 'object') return; // hang (refuse never gets here)
      const body = current.json === undefined ? '' : JSON.stringify(current.json);
      res.writeHead(current.status, { 'content-type': 'application/json' }).end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (port: number): Promise<void> =>
    new Promise((ok, fail) => {
      server.once('error', fail);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', fail);
        ok();
      });
    });
  const close = (): Promise<void> =>
    new Promise((ok) => {
      for (const s of sockets) s.destroy();
      if (server.listening) server.close(() => ok());
      else ok();
    });
  await listen(0);
  const port = (server.address() as { port: number }).port;
  if (initial === 'refuse') await close();
  return {
    url: `http://127.0.0.1:${port}/ingress/rspamd`,
    requests,
    async answer(a) {
      current = a;
      if (a === 'refuse') await close();
      else if (!server.listening) await listen(port);
    },
    stop: close,
  };
}
