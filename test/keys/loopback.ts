// Loopback stand-ins for partners' web servers: an HTTP server serving
// /.well-known/agent-keys.json per Host, and a name resolution that maps every
// partner domain to 127.0.0.1 (the JWKS URL keeps the partner's host name, as in
// production; only name resolution is replaced, so nothing leaves the machine). The
// production address guard still runs: tests allow loopback with LOOPBACK_ALLOWED.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupFunction } from 'node:net';

export interface JwksServer {
  readonly port: number;
  /** What GET /.well-known/agent-keys.json answers for a Host (status default 200; unset hosts get 404). */
  set(host: string, answer: { status?: number; body?: unknown; delayMs?: number }): void;
  /** Requests per host so far. */
  count(host: string): number;
  stop(): Promise<void>;
}

export async function startJwksServer(): Promise<JwksServer> {
  const answers = new Map<string, { status?: number; body?: unknown; delayMs?: number }>();
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    counts.set(host, (counts.get(host) ?? 0) + 1);
    const a = req.url === '/.well-known/agent-keys.json' ? answers.get(host) : undefined;
    const reply = (): void => {
      res.writeHead(a ? (a.status ?? 200) : 404, { 'content-type': 'application/json' });
      res.end(a?.body === undefined ? '{}' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
    };
    if (a?.delayMs) setTimeout(reply, a.delayMs).unref();
    else reply();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    port: (server.address() as AddressInfo).port,
    set: (host, answer) => void answers.set(host, answer),
    count: (host) => counts.get(host) ?? 0,
    stop: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** The ADMP_FETCH_ALLOW value that lets the guarded fetch reach the loopback stand-ins. */
export const LOOPBACK_ALLOWED = '127.0.0.1';

/** Resolves the names `resolves` admits (default: under .example) to `address` and refuses every other name. */
export function loopbackLookup(
  resolves: (hostname: string) => boolean = (h) => /\.example$/i.test(h),
  address = '127.0.0.1',
): LookupFunction {
  return (hostname, options, callback) => {
    if (!resolves(hostname)) {
      callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 4);
    } else if (options.all) {
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address, family: 4 },
      ]);
    } else {
      callback(null, address, 4);
    }
  };
}
