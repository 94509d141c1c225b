// Liveness and readiness. /readyz is ready only when the database answers and
// every migration on disk has been applied.
import type { FastifyPluginAsync } from 'fastify';
import type pg from 'pg';
import { pendingMigrations } from '../../db/migrate.js';

export const healthRoutes =
  (pool: pg.Pool): FastifyPluginAsync =>
  async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (req, reply) => {
      try {
        const pending = await pendingMigrations(pool);
        if (pending.length > 0)
          return reply.status(503).send({ status: 'not_ready', reason: `pending migrations: ${pending.join(', ')}` });
        return { status: 'ready' };
      } catch (err) {
        req.log.warn({ err }, 'readiness check failed');
        return reply.status(503).send({ status: 'not_ready', reason: 'database unreachable' });
      }
    });
  };
