// A key's state at a given time, for listings.
import type { AgentKeyRow } from '../db/keys.js';

/** The state of a key at `at`, for listings. */
export function keyState(k: AgentKeyRow, at: Date): 'valid' | 'revoked' | 'expired' | 'pending' {
  if (k.revokedAt && k.revokedAt <= at) return 'revoked';
  if (k.notAfter && k.notAfter <= at) return 'expired';
  return k.notBefore > at ? 'pending' : 'valid';
}
