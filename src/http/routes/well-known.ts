// Our agents' public keys as a JWK Set at /.well-known/agent-keys.json, which
// partners fetch to verify our agents' signatures (docs/protocol.md §Keys).
import type { FastifyPluginAsync } from 'fastify';
import type pg from 'pg';
import { listValidKeys } from '../../db/keys.js';
import { JWKS_PATH, ourJwks } from '../../keys/jwks.js';

// Partners cache the set; a short max-age keeps rotations visible quickly.
const MAX_AGE_SEC = 300;

export const wellKnownRoutes =
  (pool: pg.Pool): FastifyPluginAsync =>
  async (app) => {
    app.get(JWKS_PATH, async (_req, reply) => {
      const rows = await listValidKeys(pool, { source: 'local' }, new Date());
      return reply
        .header('cache-control', `public, max-age=${MAX_AGE_SEC}`)
        .type('application/jwk-set+json')
        .send(ourJwks(rows));
    });
  };
