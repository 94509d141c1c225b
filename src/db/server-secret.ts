// Secrets shared by every instance (migrations/0008): made at first use, then read.
import { randomBytes } from 'node:crypto';
import type { Queryable } from './pool.js';

/** The secret called `name`; the first caller's random 32 bytes win a race (ON CONFLICT DO NOTHING). */
export async function serverSecret(db: Queryable, name: string): Promise<Buffer> {
  await db.query('INSERT INTO server_secret (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
    name,
    randomBytes(32),
  ]);
  const { rows } = await db.query<{ secret: Buffer }>('SELECT secret FROM server_secret WHERE name = $1', [name]);
  return rows[0]!.secret;
}
