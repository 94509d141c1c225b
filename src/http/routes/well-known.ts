// Our agents' public keys as a JWK Set at /.well-known/agent-keys.json, which
// partners fetch to verify our agents' signatures (docs/protocol.md §Keys).
import type { FastifyPluginAsync } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Admin } from '../../admin/admin.js';
import { JWKS_PATH, ourJwks } from '../../keys/jwks.js';

// Partners cache the set; a short max-age keeps rotations visible quickly.
const MAX_AGE_SEC = 300;

const AgentKeySet = Type.Object(
  {
    keys: Type.Array(
      Type.Object({
        kty: Type.Literal('OKP'),
        crv: Type.Literal('Ed25519'),
        kid: Type.String(),
        x: Type.String({ description: 'raw public key, base64url (RFC 8037 §2)' }),
        use: Type.Literal('sig'),
        alg: Type.Literal('EdDSA'),
        agent: Type.String({ description: 'the one agent address this key signs for' }),
      }),
    ),
  },
  { description: "Our agents' public keys, a JWK Set (RFC 7517 §5)" },
);

export const wellKnownRoutes =
  (admin: Pick<Admin, 'validKeys'>): FastifyPluginAsync =>
  async (app) => {
    app.get(JWKS_PATH, { schema: { response: { 200: AgentKeySet } } }, async (_req, reply) => {
      const rows = await admin.validKeys({ source: 'local' });
      return reply
        .header('cache-control', `public, max-age=${MAX_AGE_SEC}`)
        .type('application/jwk-set+json')
        .send(ourJwks(rows));
    });
  };
