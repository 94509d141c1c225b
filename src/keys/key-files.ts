// Our agents' private keys on disk: `<keys dir>/<agent>.<kid>.pem` (PKCS#8, written
// by `admp key create|rotate`), and the choice of the key an agent signs with now.
// The database says which keys are valid; the directory says which we can use.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { listValidKeys, type AgentKeyRow } from '../db/keys.js';
import type { Queryable } from '../db/pool.js';
import { publicKeyFromSeed } from '../core/signature.js';
import type { SigningKey } from '../mail/signed-message.js';
import { seedFromPem } from './private-key.js';

export const keysDir = (config: Pick<Config, 'keysDir' | 'dataDir'>): string =>
  config.keysDir || join(config.dataDir, 'keys');

export const keyFileName = (agent: string, kid: string): string => `${agent}.${kid}.pem`;

// Partners may cache our key set this long: /.well-known/agent-keys.json is served
// with max-age=300 and ADMP_KEY_CACHE_SEC defaults to 300 (docs/protocol.md §7.4).
export const PUBLISH_DELAY_SEC = 300;

/**
 * Signing preference among valid keys: first the newest key published at least
 * PUBLISH_DELAY_SEC ago (partners' caches know it), then newer keys (a fresh agent
 * has no older key; a partner with a stale cache refetches once for an unknown kid).
 */
export function signingOrder(rows: readonly AgentKeyRow[], at: Date): AgentKeyRow[] {
  const settled = at.getTime() - PUBLISH_DELAY_SEC * 1000;
  const newestFirst = [...rows].sort(
    (a, b) => b.notBefore.getTime() - a.notBefore.getTime() || b.createdAt.getTime() - a.createdAt.getTime(),
  );
  return [
    ...newestFirst.filter((r) => r.notBefore.getTime() <= settled),
    ...newestFirst.filter((r) => r.notBefore.getTime() > settled),
  ];
}

/** The key `agent` signs with at `at`: the first of signingOrder whose PEM file exists and matches; undefined when none does. */
export async function loadSigningKey(
  db: Queryable,
  dir: string,
  agent: string,
  at: Date,
): Promise<SigningKey | undefined> {
  const rows = await listValidKeys(db, { agent, source: 'local' }, at);
  for (const row of signingOrder(rows, at)) {
    let pem: string;
    try {
      pem = await readFile(join(dir, keyFileName(row.agent, row.kid)), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const seed = seedFromPem(pem);
    // A file whose key is not the published one would only produce refused mail.
    if (Buffer.from(publicKeyFromSeed(seed)).equals(row.publicKey)) return { agent: row.agent, kid: row.kid, seed };
  }
  return undefined;
}
