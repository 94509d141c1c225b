// Tenants: subdomains under a wildcard of ADMP_DOMAINS, each with agents of its own
// (migrations/0017_tenants.sql). Agents are added while the tenant row is share-locked
// (db/agents.ts), and a tenant is removed only under its row lock once no agent remains,
// so an agent can never be left in a tenant that is gone.
import type pg from 'pg';
import { AdmpError } from '../errors.js';
import { inTransaction, type Queryable } from './pool.js';

export interface TenantRow {
  domain: string;
  created_at: Date;
  agents: number;
}

const AGENTS = '(SELECT count(*)::int FROM agent a WHERE a.domain = t.domain) AS agents';

/** Creates the tenant; false when it already exists. */
export async function addTenant(db: Queryable, domain: string): Promise<boolean> {
  const { rowCount } = await db.query('INSERT INTO tenant (domain) VALUES ($1) ON CONFLICT (domain) DO NOTHING', [
    domain,
  ]);
  return rowCount === 1;
}

export async function listTenants(db: Queryable): Promise<TenantRow[]> {
  return (await db.query<TenantRow>(`SELECT t.domain, t.created_at, ${AGENTS} FROM tenant t ORDER BY t.domain`)).rows;
}

export async function tenantExists(db: Queryable, domain: string): Promise<boolean> {
  return (await db.query('SELECT 1 FROM tenant WHERE domain = $1', [domain])).rowCount === 1;
}

/** Removes an empty tenant; not_found when there is none, bad_request while it has agents. */
export async function removeTenant(pool: pg.Pool, domain: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    // The row lock first: an agent being added holds FOR SHARE on it, so once we have
    // it, the agent count read next (a new snapshot) sees every committed agent.
    const locked = await c.query('SELECT 1 FROM tenant WHERE domain = $1 FOR UPDATE', [domain]);
    if (locked.rowCount === 0) throw new AdmpError('not_found', `no tenant ${domain}`);
    const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM agent WHERE domain = $1', [domain]);
    if (rows[0]!.n > 0)
      throw new AdmpError('bad_request', `tenant ${domain} still has ${rows[0]!.n} agent(s): remove them first`);
    await c.query('DELETE FROM tenant WHERE domain = $1', [domain]);
  });
}
