// A webhook receiver on loopback that verifies every request with the `standardwebhooks`
// package (the reference implementation of the spec) and answers as a test scripts it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  readonly path: string;
  readonly id: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The verified payload: `{ type, timestamp, data }`. */
  readonly payload: { type: string; timestamp: string; data: Record<string, unknown> };
  readonly at: number;
}

/** How a path answers: a status, or a handler of its own (slow, redirecting…). */
export type Script = (req: IncomingMessage, res: ServerResponse, n: number) => void;

export interface Receiver {
  readonly url: string;
  readonly port: number;
  readonly received: Received[];
  /** Requests that failed verification. */
  readonly rejected: string[];
  /** The secret endpoints must sign with (set before deliveries start). */
  secret: string;
  script(path: string, s: Script): void;
  close(): Promise<void>;
}

export const answer =
  (status: number, headers: Record<string, string> = {}): Script =>
  (_req, res) => {
    res.writeHead(status, headers).end();
  };

export async function startReceiver(): Promise<Receiver> {
  const scripts = new Map<string, Script>();
  const counts = new Map<string, number>();
  const received: Received[] = [];
  const rejected: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const path = req.url ?? '/';
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      let payload: Received['payload'];
      try {
        payload = new Webhook(r.secret).verify(body, headers) as Received['payload'];
      } catch (err) {
        rejected.push(`${path}: ${(err as Error).message}`);
        res.writeHead(400).end();
        return;
      }
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      received.push({ path, id: headers['webhook-id']!, headers, body, payload, at: performance.now() });
      (scripts.get(path) ?? answer(204))(req, res, n);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  const r: Receiver = {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    rejected,
    secret: '',
    script: (path, s) => void scripts.set(path, s),
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
  return r;
}
