// Queries on agent_key: our agents' public keys ('local') and partner keys pinned
// by an operator ('pinned'). Always addressed by (domain, kid), never kid alone.
// "Valid at t" means not revoked and not_before <= t < not_after; `t` is an
// argument so the caller's clock (and the tests') decides, not the server's.
import { AdmpError } from '../errors.js';
import { parseAddress } from '../core/address.js';
import { KID } from '../core/signature.js';
import type { Queryable } from './pool.js';

export interface AgentKeyRow {
  readonly domain: string;
  readonly kid: string;
  readonly agent: string;
  readonly publicKey: Buffer;
  readonly source: 'local' | 'pinned';
  readonly notBefore: Date;
  readonly notAfter: Date | null;
  readonly revokedAt: Date | null;
  readonly createdAt: Date;
}

export interface NewKey {
  /** Agent address local@domain the key signs for. */
  readonly agent: string;
  readonly kid: string;
  readonly publicKey: Uint8Array;
  readonly notBefore?: Date;
  readonly notAfter?: Date | null;
}

const COLUMNS = `domain, kid, agent, public_key AS "publicKey", source, not_before AS "notBefore",
  not_after AS "notAfter", revoked_at AS "revokedAt", created_at AS "createdAt"`;
const VALID_AT = (p: string): string =>
  `(revoked_at IS NULL OR revoked_at > ${p}) AND not_before <= ${p} AND (not_after IS NULL OR not_after > ${p})`;

async function insertKey(db: Queryable, key: NewKey, source: AgentKeyRow['source']): Promise<AgentKeyRow> {
  const a = parseAddress(key.agent, 'agent');
  if (!KID.test(key.kid)) throw new AdmpError('bad_request', 'a key id is 1 to 128 of A-Z a-z 0-9 . _ -');
  if (key.publicKey.length !== 32) throw new AdmpError('bad_request', 'an Ed25519 public key is 32 bytes');
  const { rows } = await db.query<AgentKeyRow>(
    `INSERT INTO agent_key (domain, kid, agent, public_key, source, not_before, not_after)
     VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), $7)
     ON CONFLICT (domain, kid) DO NOTHING RETURNING ${COLUMNS}`,
    [a.domain, key.kid, a.address, Buffer.from(key.publicKey), source, key.notBefore ?? null, key.notAfter ?? null],
  );
  if (rows[0]) return rows[0];
  // The same key again is harmless (a re-run import); a different key under a used kid is not.
  const existing = await findKeyAnyState(db, a.domain, key.kid);
  if (
    existing &&
    existing.agent === a.address &&
    existing.source === source &&
    existing.publicKey.equals(key.publicKey)
  )
    return existing;
  throw new AdmpError('bad_request', `key id ${key.kid} is already used in ${a.domain}`);
}

/** Records the public half of a key we created for one of our agents. */
export const insertLocalKey = (db: Queryable, key: NewKey): Promise<AgentKeyRow> => insertKey(db, key, 'local');

/** Pins a partner agent's public key, trusted without discovery. */
export const pinPartnerKey = (db: Queryable, key: NewKey): Promise<AgentKeyRow> => insertKey(db, key, 'pinned');

async function findKeyAnyState(db: Queryable, domain: string, kid: string): Promise<AgentKeyRow | undefined> {
  const { rows } = await db.query<AgentKeyRow>(`SELECT ${COLUMNS} FROM agent_key WHERE domain = $1 AND kid = $2`, [
    domain,
    kid,
  ]);
  return rows[0];
}

/** The key (domain, kid) if it is valid at `at`. */
export async function findValidKey(
  db: Queryable,
  domain: string,
  kid: string,
  at: Date,
): Promise<AgentKeyRow | undefined> {
  const { rows } = await db.query<AgentKeyRow>(
    `SELECT ${COLUMNS} FROM agent_key WHERE domain = $1 AND kid = $2 AND ${VALID_AT('$3')}`,
    [domain, kid, at],
  );
  return rows[0];
}

export interface KeyFilter {
  readonly domain?: string;
  readonly agent?: string;
  readonly source?: AgentKeyRow['source'];
}

/** Keys valid at `at`, oldest first, optionally for one domain, agent or source. */
export async function listValidKeys(db: Queryable, filter: KeyFilter, at: Date): Promise<AgentKeyRow[]> {
  const { rows } = await db.query<AgentKeyRow>(
    `SELECT ${COLUMNS} FROM agent_key
      WHERE ${VALID_AT('$1')} AND ($2::text IS NULL OR domain = $2) AND ($3::text IS NULL OR agent = $3)
        AND ($4::text IS NULL OR source = $4)
      ORDER BY created_at, domain, kid`,
    [at, filter.domain?.toLowerCase() ?? null, filter.agent?.toLowerCase() ?? null, filter.source ?? null],
  );
  return rows;
}

/** Every key row, valid or not (for `admp key list`). */
export async function listAllKeys(db: Queryable): Promise<AgentKeyRow[]> {
  const { rows } = await db.query<AgentKeyRow>(
    `SELECT ${COLUMNS} FROM agent_key ORDER BY domain, agent, created_at, kid`,
  );
  return rows;
}

/** Revokes (domain, kid) from `at` on; returns false when there was no such live key. */
export async function revokeKey(db: Queryable, domain: string, kid: string, at: Date): Promise<boolean> {
  const { rowCount } = await db.query(
    'UPDATE agent_key SET revoked_at = $3 WHERE domain = $1 AND kid = $2 AND revoked_at IS NULL',
    [domain.toLowerCase(), kid, at],
  );
  return rowCount === 1;
}

/**
 * Ends the validity of an agent's other live keys at `until` (a rotation's overlap:
 * both keys verify until then). A key that already ends sooner keeps its end.
 * Returns the kids changed.
 */
export async function retireOtherKeys(db: Queryable, agent: string, keepKid: string, until: Date): Promise<string[]> {
  const { rows } = await db.query<{ kid: string }>(
    `UPDATE agent_key SET not_after = $3
      WHERE agent = $1 AND kid <> $2 AND source = 'local' AND revoked_at IS NULL AND (not_after IS NULL OR not_after > $3)
     RETURNING kid`,
    [agent.toLowerCase(), keepKid, until],
  );
  return rows.map((r) => r.kid);
}

/** Revokes every live (not revoked, not expired) key of an agent, or only `kid`, from `at` on; returns the kids revoked. */
export async function revokeAgentKeys(db: Queryable, agent: string, at: Date, kid?: string): Promise<string[]> {
  const { rows } = await db.query<{ kid: string }>(
    `UPDATE agent_key SET revoked_at = $2
      WHERE agent = $1 AND revoked_at IS NULL AND (not_after IS NULL OR not_after > $2) AND ($3::text IS NULL OR kid = $3)
     RETURNING kid`,
    [agent.toLowerCase(), at, kid ?? null],
  );
  return rows.map((r) => r.kid);
}
