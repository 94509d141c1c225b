// Agents and their API credentials (bearer tokens stored as SHA-256, HMAC secrets).
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { CertBinding } from '../core/client-cert.js';
import { AdmpError } from '../errors.js';
import { deleteSearchEntries } from './message-search.js';
import { DELETED_COLUMNS, deleteDedupeKeys, type DeletedMessage } from './dedupe-keys.js';
import { inTransaction } from './pool.js';

export interface AgentRow {
  id: string;
  domain: string;
  status: 'active' | 'disabled';
  created_at: Date;
}
export interface Credentials {
  token: string;
  hmac_secret: string;
}

export const TOKEN_PREFIX = 'admp_';
export const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();
const newToken = (): string => TOKEN_PREFIX + randomBytes(32).toString('base64url');
const newSecret = (): Buffer => randomBytes(32);

async function issue(
  client: pg.PoolClient,
  agentId: string,
  kinds: ('token' | 'hmac')[],
): Promise<Partial<Credentials>> {
  const out: Partial<Credentials> = {};
  for (const kind of kinds) {
    await client.query(
      'UPDATE agent_credential SET revoked_at = now() WHERE agent_id = $1 AND kind = $2 AND revoked_at IS NULL',
      [agentId, kind],
    );
    if (kind === 'token') {
      out.token = newToken();
      await client.query("INSERT INTO agent_credential (agent_id, kind, token_hash) VALUES ($1, 'token', $2)", [
        agentId,
        hashToken(out.token),
      ]);
    } else {
      const secret = newSecret();
      out.hmac_secret = secret.toString('base64url');
      await client.query("INSERT INTO agent_credential (agent_id, kind, secret) VALUES ($1, 'hmac', $2)", [
        agentId,
        secret,
      ]);
    }
  }
  return out;
}

/**
 * Creates an agent with a fresh bearer token and HMAC secret; they are returned once and
 * never stored in the clear (the token). A tenant's agent is added under a share lock on
 * its tenant row, so the tenant cannot be removed meanwhile (db/tenants.ts).
 */
export async function addAgent(
  pool: pg.Pool,
  id: string,
  domain: string,
  tenant = false,
): Promise<AgentRow & Credentials> {
  return inTransaction(pool, async (c) => {
    if (tenant && (await c.query('SELECT 1 FROM tenant WHERE domain = $1 FOR SHARE', [domain])).rowCount === 0)
      throw new AdmpError('unknown_tenant', `no tenant ${domain}: add it first (admp tenant add)`);
    const res = await c.query<AgentRow>(
      'INSERT INTO agent (id, domain) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING *',
      [id, domain],
    );
    const row = res.rows[0];
    if (!row) throw new AdmpError('bad_request', `agent ${id} already exists`);
    const creds = (await issue(c, id, ['token', 'hmac'])) as Credentials;
    return { ...row, ...creds };
  });
}

/** Revokes the agent's current token (and HMAC secret when asked) and issues new ones. */
export async function rotateCredentials(
  pool: pg.Pool,
  id: string,
  kinds: ('token' | 'hmac')[],
): Promise<Partial<Credentials>> {
  return inTransaction(pool, async (c) => {
    const res = await c.query('SELECT 1 FROM agent WHERE id = $1 FOR UPDATE', [id]);
    if (res.rowCount === 0) throw new AdmpError('not_found', `no agent ${id}`);
    return issue(c, id, kinds);
  });
}

export async function listAgents(pool: pg.Pool): Promise<AgentRow[]> {
  return (await pool.query<AgentRow>('SELECT id, domain, status, created_at FROM agent ORDER BY id')).rows;
}

export async function findAgent(pool: pg.Pool, id: string): Promise<AgentRow | undefined> {
  return (await pool.query<AgentRow>('SELECT id, domain, status, created_at FROM agent WHERE id = $1', [id])).rows[0];
}

/** An agent as API authentication needs it: with the client certificates it is bound to. */
export interface AuthAgentRow extends AgentRow {
  client_certs: CertBinding[];
}
// One statement per authentication: the bindings ride along with the agent row.
const CLIENT_CERTS = `coalesce((SELECT json_agg(json_build_object('kind', b.kind, 'value', b.value))
    FROM agent_client_cert b WHERE b.agent_id = a.id), '[]') AS client_certs`;

export async function findAuthAgent(pool: pg.Pool, id: string): Promise<AuthAgentRow | undefined> {
  const { rows } = await pool.query<AuthAgentRow>(
    `SELECT a.id, a.domain, a.status, a.created_at, ${CLIENT_CERTS} FROM agent a WHERE a.id = $1`,
    [id],
  );
  return rows[0];
}

export async function agentByToken(pool: pg.Pool, token: string): Promise<AuthAgentRow | undefined> {
  const { rows } = await pool.query<AuthAgentRow>(
    `SELECT a.id, a.domain, a.status, a.created_at, ${CLIENT_CERTS}
       FROM agent_credential c JOIN agent a ON a.id = c.agent_id
      WHERE c.kind = 'token' AND c.token_hash = $1 AND c.revoked_at IS NULL AND a.status = 'active'`,
    [hashToken(token)],
  );
  return rows[0];
}

export async function hmacSecrets(pool: pg.Pool, agentId: string): Promise<Buffer[]> {
  const { rows } = await pool.query<{ secret: Buffer }>(
    `SELECT c.secret FROM agent_credential c JOIN agent a ON a.id = c.agent_id
      WHERE c.kind = 'hmac' AND c.agent_id = $1 AND c.revoked_at IS NULL AND a.status = 'active'`,
    [agentId],
  );
  return rows.map((r) => r.secret);
}

/**
 * Removes an agent with its keys and every message to or from it (the doctor's throw-away
 * probe agent), with their dedupe keys and search entries: retention removes keys only
 * with their messages, so a key left here would stay for good.
 */
export async function purgeAgent(pool: pg.Pool, id: string, address: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    // The agent and its keys first: on Citus they are reference tables, which a transaction
    // may not change after a statement over several shards (the message deletes below).
    await c.query('DELETE FROM agent_key WHERE agent = $1', [address]);
    await c.query('DELETE FROM agent WHERE id = $1', [id]);
    const gone = await c.query<DeletedMessage>(
      `DELETE FROM message m WHERE to_agent_id = $1 OR from_agent = $2 RETURNING ${DELETED_COLUMNS}`,
      [id, address],
    );
    await deleteDedupeKeys(c, gone.rows);
    await deleteSearchEntries(c, gone.rows);
  });
}
