// GET /metrics in the Prometheus text format: on the API listener (ADMP_METRICS_LISTEN
// empty), or on a listener of its own, so that the API can stay on loopback behind a
// proxy while Prometheus scrapes another address (or the other way round).
import { createServer, type Server } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { parseListen } from '../config.js';

export const metricsRoutes =
  (registry: Registry): FastifyPluginAsync =>
  async (app) => {
    app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  };

export interface MetricsListener {
  /** `http://host:port`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves /metrics (and nothing else) on `listen` (`host:port`, ADMP_METRICS_LISTEN). */
export async function listenMetrics(registry: Registry, listen: string): Promise<MetricsListener> {
  const { host, port } = parseListen(listen, 'ADMP_METRICS_LISTEN');
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: only GET /metrics is served here\n');
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
