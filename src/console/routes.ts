// GET /console: the operator console's static files (built by `npm run build` from
// console/src), with strict security headers: the page may load only its own script
// and stylesheet and talk only to this origin; no framing, no inline code, no referrer.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';

export const CONSOLE_DIST = fileURLToPath(new URL('../../console/dist/', import.meta.url));

export const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
  // Revalidated on every load: the file names carry no hash.
  'cache-control': 'no-cache',
} as const;

export const consoleRoutes =
  (root = CONSOLE_DIST): FastifyPluginAsync =>
  async (app) => {
    app.addHook('onSend', async (_req, reply) => {
      void reply.headers(SECURITY_HEADERS);
    });
    app.get('/console', (_req, reply) => reply.redirect('/console/'));
    if (!existsSync(root + 'index.html')) {
      // Served from a checkout that was never built: say how, rather than 404.
      app.get('/console/*', (_req, reply) =>
        reply
          .status(503)
          .type('text/plain; charset=utf-8')
          .send('The console is not built: run `npm run build` (npm start does it).\n'),
      );
      return;
    }
    await app.register(fastifyStatic, { root, prefix: '/console/', index: 'index.html', wildcard: true });
  };
