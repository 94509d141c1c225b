// Creating and reading agent private keys. The private key lives only in a PKCS#8
// PEM file (RFC 8410 §7) that the agent's operator keeps; the database holds the
// public half. Our key ids are RFC 7638 JWK thumbprints, so the kid of a key is the
// same in our JWKS, our DNS TXT records and any partner's pin.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { publicKeyFromSeed, seedOfPrivateKey } from '../core/signature.js';

export interface NewAgentKey {
  readonly kid: string;
  /** Raw 32-byte public key. */
  readonly publicKey: Uint8Array;
  readonly privateKeyPem: string;
}

/** RFC 7638 thumbprint (SHA-256, base64url) of the Ed25519 public JWK. */
export const keyThumbprint = (publicKey: Uint8Array): Promise<string> =>
  calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, 'sha256');

export async function createAgentKey(): Promise<NewAgentKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = publicKeyFromSeed(seedOfPrivateKey(privateKey));
  return {
    kid: await keyThumbprint(publicKey),
    publicKey,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** The 32-byte seed in a PKCS#8 Ed25519 PEM. */
export function seedFromPem(pem: string): Uint8Array {
  return seedOfPrivateKey(createPrivateKey(pem));
}
