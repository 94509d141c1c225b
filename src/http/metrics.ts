// GET /metrics in the Prometheus text format. The metrics name agents and the remote
// addresses they correspond with, so they are not public: by default they are served on
// a listener of their own on loopback (ADMP_METRICS_LISTEN), and on the API listener only
// when ADMP_METRICS_TOKEN is set, to requests that carry it (on both listeners then).
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { Listen } from '../config.js';

/** True when `token` is empty (no token asked for) or the Authorization header carries it. */
export function metricsAuthorized(authorization: string | undefined, token: string): boolean {
  if (!token) return true;
  const digest = (x: string) => createHash('sha256').update(x).digest();
  return timingSafeEqual(digest(authorization ?? ''), digest(`Bearer ${token}`));
}

const UNAUTHORIZED = 'unauthorized: /metrics asks for Authorization: Bearer <ADMP_METRICS_TOKEN>\n';

/** /metrics on the API listener: only with a token (ADMP_METRICS_TOKEN). */
export const metricsRoutes =
  (registry: Registry, token: string): FastifyPluginAsync =>
  async (app) => {
    app.get('/metrics', async (req, reply) => {
      if (!metricsAuthorized(req.headers.authorization, token))
        return reply.code(401).type('text/plain').send(UNAUTHORIZED);
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  };

export interface MetricsListener {
  /** `http://host:port`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves /metrics (and nothing else) on `listen` (`host:port`, ADMP_METRICS_LISTEN). */
export async function listenMetrics(registry: Registry, { host, port }: Listen, token = ''): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: only GET /metrics is served here\n');
      return;
    }
    if (!metricsAuthorized(req.headers.authorization, token)) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end(UNAUTHORIZED);
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  const addr = server.address() as { address: string; port: number };
  const shown = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
