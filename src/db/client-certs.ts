// Client certificates agents are bound to (migrations/0005_agent_client_cert.sql).
import type pg from 'pg';
import type { CertBinding } from '../core/client-cert.js';
import { AdmpError } from '../errors.js';

export interface CertBindingRow extends CertBinding {
  readonly agent_id: string;
  readonly created_at: Date;
}

/** Binds the agent to a certificate; binding it twice to the same one is a no-op. */
export async function addCertBinding(pool: pg.Pool, agentId: string, b: CertBinding): Promise<void> {
  const res = await pool.query(
    `INSERT INTO agent_client_cert (agent_id, kind, value)
     SELECT id, $2, $3 FROM agent WHERE id = $1
     ON CONFLICT (agent_id, kind, value) DO NOTHING`,
    [agentId, b.kind, b.value],
  );
  if (res.rowCount === 0) {
    const exists = await pool.query('SELECT 1 FROM agent WHERE id = $1', [agentId]);
    if (exists.rowCount === 0) throw new AdmpError('not_found', `no agent ${agentId}`);
  }
}

/** Returns whether a binding was removed. */
export async function removeCertBinding(pool: pg.Pool, agentId: string, b: CertBinding): Promise<boolean> {
  const res = await pool.query('DELETE FROM agent_client_cert WHERE agent_id = $1 AND kind = $2 AND value = $3', [
    agentId,
    b.kind,
    b.value,
  ]);
  return (res.rowCount ?? 0) > 0;
}

export async function listCertBindings(pool: pg.Pool, agentId?: string): Promise<CertBindingRow[]> {
  const { rows } = await pool.query<CertBindingRow>(
    `SELECT agent_id, kind, value, created_at FROM agent_client_cert
      WHERE $1::text IS NULL OR agent_id = $1 ORDER BY agent_id, kind, value`,
    [agentId ?? null],
  );
  return rows;
}
