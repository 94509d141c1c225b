// Address tokens (migrations/0017_tenants.sql): `t-<token>@<domain>` routes to an agent
// without naming it. 128 random bits, so an address cannot be guessed from another.
import { randomBytes } from 'node:crypto';
import type { Queryable } from './pool.js';

export interface AddressTokenRow {
  token: string;
  agent_id: string;
  /** The agent's domain: the token's address is `${token}@${domain}`. */
  domain: string;
  created_at: Date;
  revoked_at: Date | null;
}

/** What a token resolves to: its agent (with the agent's state) and whether it was revoked. */
export interface TokenTarget {
  agent_id: string;
  domain: string;
  status: 'active' | 'disabled';
  revoked: boolean;
}

export const newAddressToken = (): string => `t-${randomBytes(16).toString('hex')}`;

const COLUMNS = 't.token, t.agent_id, a.domain, t.created_at, t.revoked_at';

/** A new token for the agent (the caller checked that it exists; the foreign key holds it to that). */
export async function createAddressToken(
  db: Queryable,
  agent: { id: string; domain: string },
): Promise<AddressTokenRow> {
  const { rows } = await db.query<Omit<AddressTokenRow, 'domain'>>(
    'INSERT INTO address_token (token, agent_id) VALUES ($1, $2) RETURNING token, agent_id, created_at, revoked_at',
    [newAddressToken(), agent.id],
  );
  return { ...rows[0]!, domain: agent.domain };
}

export async function listAddressTokens(db: Queryable, agentId?: string): Promise<AddressTokenRow[]> {
  const { rows } = await db.query<AddressTokenRow>(
    `SELECT ${COLUMNS} FROM address_token t JOIN agent a ON a.id = t.agent_id
      WHERE $1::text IS NULL OR t.agent_id = $1 ORDER BY t.created_at, t.token`,
    [agentId ?? null],
  );
  return rows;
}

/** Revokes a live token of that domain; false when there is none. */
export async function revokeAddressToken(db: Queryable, token: string, domain: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE address_token t SET revoked_at = now() FROM agent a
      WHERE t.token = $1 AND a.id = t.agent_id AND a.domain = $2 AND t.revoked_at IS NULL`,
    [token, domain],
  );
  return rowCount === 1;
}

export async function findAddressToken(db: Queryable, token: string): Promise<TokenTarget | undefined> {
  const { rows } = await db.query<TokenTarget>(
    `SELECT t.agent_id, a.domain, a.status, t.revoked_at IS NOT NULL AS revoked
       FROM address_token t JOIN agent a ON a.id = t.agent_id WHERE t.token = $1`,
    [token],
  );
  return rows[0];
}
