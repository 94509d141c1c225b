// Liveness and readiness. /readyz is ready only when the database answers and
// every migration on disk has been applied.
import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Admin } from '../../admin/admin.js';

export const healthRoutes =
  (admin: Pick<Admin, 'pendingMigrations'>): FastifyPluginAsync =>
  async (app) => {
    app.get('/healthz', { schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({
      status: 'ok',
    }));
    const readiness = {
      200: Type.Object({ status: Type.Literal('ready') }),
      503: Type.Object({ status: Type.Literal('not_ready'), reason: Type.String() }),
    };
    app.get('/readyz', { schema: { response: readiness } }, async (req, reply) => {
      try {
        const pending = await admin.pendingMigrations();
        if (pending.length > 0)
          return reply.status(503).send({ status: 'not_ready', reason: `pending migrations: ${pending.join(', ')}` });
        return { status: 'ready' };
      } catch (err) {
        req.log.warn({ err }, 'readiness check failed');
        return reply.status(503).send({ status: 'not_ready', reason: 'database unreachable' });
      }
    });
  };
