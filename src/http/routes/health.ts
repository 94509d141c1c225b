// Liveness and readiness. /readyz is ready only when the database answers, every
// migration on disk has been applied, the message table can be written, and (when
// the process has one) the long-poll wake-up connection is listening.
import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Admin } from '../../admin/admin.js';

export const healthRoutes =
  (admin: Pick<Admin, 'notReady'>, listening?: () => boolean): FastifyPluginAsync =>
  async (app) => {
    app.get('/healthz', { schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({
      status: 'ok',
    }));
    const readiness = {
      200: Type.Object({ status: Type.Literal('ready') }),
      503: Type.Object({ status: Type.Literal('not_ready'), reason: Type.String() }),
    };
    app.get('/readyz', { schema: { response: readiness } }, async (req, reply) => {
      let reason: string | undefined;
      try {
        reason = await admin.notReady();
      } catch (err) {
        req.log.debug({ err }, 'readiness check failed');
        reason = 'database unreachable';
      }
      if (!reason && listening && !listening()) reason = 'long-poll wake-up connection down (pulls poll once a second)';
      if (reason) return reply.status(503).send({ status: 'not_ready', reason });
      return { status: 'ready' };
    });
  };
