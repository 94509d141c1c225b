// Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"):
// the signed content is `<webhook-id>.<webhook-timestamp>.<body>`; `v1` is its
// HMAC-SHA256 under the secret's bytes, `v1a` its Ed25519 signature, each base64, and
// `webhook-signature` lists them separated by spaces (a verifier accepts any one it knows).
import { createHmac, sign } from 'node:crypto';
import { privateKeyFromSeed } from '../core/signature.js';

export interface SigningKeys {
  readonly secret: Buffer;
  readonly ed25519Seed: Buffer | null;
}

/** The three Standard Webhooks headers for one delivery of `body`. */
export function webhookHeaders(
  id: string,
  timestampSec: number,
  body: string,
  keys: SigningKeys,
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  const content = `${id}.${timestampSec}.${body}`;
  const v1 = `v1,${createHmac('sha256', keys.secret).update(content).digest('base64')}`;
  const v1a = keys.ed25519Seed
    ? ` v1a,${sign(null, Buffer.from(content), privateKeyFromSeed(keys.ed25519Seed)).toString('base64')}`
    : '';
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampSec), 'webhook-signature': v1 + v1a };
}
