// What authenticating an agent needs to look up: the agent behind a bearer token,
// an agent's HMAC secrets, an active agent (each with the client certificates it is
// bound to), and one of our agents' valid public keys.
import type pg from 'pg';
import { agentByToken, findAuthAgent, hmacSecrets, type AuthAgentRow } from '../db/agents.js';
import { findValidKey } from '../db/keys.js';
import { useOnce } from '../db/replay-guard.js';

export { TOKEN_PREFIX } from '../db/agents.js';
export type { AuthAgentRow };

export interface Credentials {
  agentByToken(token: string): Promise<AuthAgentRow | undefined>;
  activeAgent(id: string): Promise<AuthAgentRow | undefined>;
  hmacSecrets(agentId: string): Promise<Buffer[]>;
  /** The raw Ed25519 public key of our agent `agent` under (domain, kid), valid now. */
  localPublicKey(domain: string, kid: string, agent: string): Promise<Buffer | undefined>;
  /** Records an HMAC request's `<agent> <nonce>` until `until`; false when it was already used (a replay). */
  useNonceOnce(key: string, until: Date): Promise<boolean>;
}

export function createCredentials(pool: pg.Pool): Credentials {
  return {
    agentByToken: (token) => agentByToken(pool, token),
    async activeAgent(id) {
      const a = await findAuthAgent(pool, id);
      return a?.status === 'active' ? a : undefined;
    },
    hmacSecrets: (agentId) => hmacSecrets(pool, agentId),
    useNonceOnce: (key, until) => useOnce(pool, 'hmac', key, until),
    async localPublicKey(domain, kid, agent) {
      const key = await findValidKey(pool, domain, kid, new Date());
      return key && key.source === 'local' && key.agent === agent ? key.publicKey : undefined;
    },
  };
}
