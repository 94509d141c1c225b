// Signed agent mail for tests, made by the same code path partners and `admp sign` use.
import { randomBytes } from 'node:crypto';
import { buildSignedMessage } from '../../src/mail/signed-message.js';
import type { Envelope } from '../../src/core/envelope.js';
import { publicKeyFromSeed } from '../../src/core/signature.js';
import { pinPartnerKey, insertLocalKey } from '../../src/db/keys.js';
import type pg from 'pg';

export interface TestSigner {
  agent: string;
  kid: string;
  seed: Uint8Array;
  publicKey: Uint8Array;
}

export function signer(agent: string, kid = `k-${randomBytes(3).toString('hex')}`): TestSigner {
  const seed = randomBytes(32);
  return { agent, kid, seed, publicKey: publicKeyFromSeed(seed) };
}

/** Pins a partner signer's key, or records a local agent's key, in agent_key. */
export async function trust(pool: pg.Pool, s: TestSigner, as: 'pinned' | 'local' = 'pinned'): Promise<void> {
  await (as === 'pinned' ? pinPartnerKey : insertLocalKey)(pool, {
    agent: s.agent,
    kid: s.kid,
    publicKey: s.publicKey,
  });
}

export async function agentMail(
  s: TestSigner,
  envelope: Envelope,
  opts: { now?: number; messageId?: string; validitySec?: number } = {},
): Promise<Buffer> {
  return (await buildSignedMessage(envelope, s, opts)).eml;
}
