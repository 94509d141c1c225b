// Operator credentials for the admin API and the console: opaque bearer tokens,
// stored as SHA-256, revocable, optionally read-only. A prefix of their own
// (`admpadm_`) keeps them apart from agent tokens (`admp_`) in logs and in the
// agent authenticator, which refuses anything that is not its own kind.
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from './pool.js';

export const ADMIN_TOKEN_PREFIX = 'admpadm_';

export interface AdminTokenRow {
  id: number;
  name: string;
  read_only: boolean;
  created_at: Date;
  revoked_at: Date | null;
}

const hash = (token: string): Buffer => createHash('sha256').update(token).digest();
const COLUMNS = 'id, name, read_only, created_at, revoked_at';

/** Creates a token; the token itself is returned once and never stored. */
export async function createAdminToken(
  db: Queryable,
  name: string,
  readOnly: boolean,
): Promise<AdminTokenRow & { token: string }> {
  const token = ADMIN_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const { rows } = await db.query<AdminTokenRow>(
    `INSERT INTO admin_token (name, token_hash, read_only) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
    [name, hash(token), readOnly],
  );
  return { ...rows[0]!, token };
}

export async function listAdminTokens(db: Queryable): Promise<AdminTokenRow[]> {
  return (await db.query<AdminTokenRow>(`SELECT ${COLUMNS} FROM admin_token ORDER BY id`)).rows;
}

/** False when there is no such token or it was already revoked. */
export async function revokeAdminToken(db: Queryable, id: number): Promise<boolean> {
  const res = await db.query('UPDATE admin_token SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
  return (res.rowCount ?? 0) > 0;
}

/** The live token with this secret, if any. */
export async function adminTokenBySecret(db: Queryable, token: string): Promise<AdminTokenRow | undefined> {
  if (!token.startsWith(ADMIN_TOKEN_PREFIX)) return undefined;
  const { rows } = await db.query<AdminTokenRow>(
    `SELECT ${COLUMNS} FROM admin_token WHERE token_hash = $1 AND revoked_at IS NULL`,
    [hash(token)],
  );
  return rows[0];
}
