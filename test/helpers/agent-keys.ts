// Gives a local agent a signing key the way `admp key create` does: the public half
// in agent_key, the private PEM as <keys dir>/<agent>.<kid>.pem.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { insertLocalKey } from '../../src/db/keys.js';
import { createAgentKey } from '../../src/keys/private-key.js';
import { keyFileName } from '../../src/keys/key-files.js';

export async function givePrivateKey(
  pool: pg.Pool,
  dir: string,
  agent: string,
  o: { notBefore?: Date; writeFile?: boolean } = {},
): Promise<{ kid: string; publicKey: Uint8Array }> {
  const k = await createAgentKey();
  await insertLocalKey(pool, {
    agent,
    kid: k.kid,
    publicKey: k.publicKey,
    ...(o.notBefore ? { notBefore: o.notBefore } : {}),
  });
  if (o.writeFile !== false) writeFileSync(join(dir, keyFileName(agent, k.kid)), k.privateKeyPem, { mode: 0o600 });
  return { kid: k.kid, publicKey: k.publicKey };
}
