// Step 4: the sending agent's Ed25519 signature over the mail's signed fields, for
// one recipient (the envelope recipient is part of what is signed).
import { AdmpError, type ErrorCode } from '../../errors.js';
import type { Envelope } from '../../core/envelope.js';
import { verifySignature, type KeyResolver, type SignatureFailure } from '../../core/signature.js';
import type { MailSignatureFields } from '../../mail/signed-message.js';
import type { Metrics } from '../../metrics.js';
import { withSpan } from '../../tracing.js';

const SIGNATURE_CODE: Record<SignatureFailure, ErrorCode> = {
  signature_missing: 'signature_missing',
  signature_invalid: 'signature_invalid',
  signature_expired: 'signature_expired',
  unknown_key: 'unknown_key',
  key_unavailable: 'key_unavailable',
};

export interface VerifiedSignature {
  readonly agent: string;
  readonly kid: string;
  readonly keySource: string;
  readonly timestamp: number;
  /** Unix seconds until which a copy may still be fresh (core validUntil): how long a replay must stay recognised. */
  readonly validUntil: number;
}

export interface SignatureCheck {
  readonly now: number;
  readonly clockSkewSec: number;
  readonly validitySec: number;
  readonly maxValiditySec: number;
  readonly receivedAt?: number;
  readonly resolveKey: KeyResolver;
  readonly metrics?: Metrics;
}

export async function verifyAgentSignature(
  fields: MailSignatureFields,
  body: Buffer,
  envelope: Envelope,
  recipient: string,
  o: SignatureCheck,
): Promise<VerifiedSignature | AdmpError> {
  const sig = await withSpan('admp.ingest.signature', { 'admp.recipient': recipient }, () =>
    verifySignature(
      { ...fields, body, envelopeRecipient: recipient, envelope },
      {
        now: o.now,
        clockSkewSec: o.clockSkewSec,
        validitySec: o.validitySec,
        maxValiditySec: o.maxValiditySec,
        receivedAt: o.receivedAt,
        resolveKey: o.resolveKey,
      },
    ),
  );
  if (sig.ok)
    return {
      agent: sig.agent,
      kid: sig.kid,
      keySource: sig.keySource,
      timestamp: sig.timestamp,
      validUntil: sig.validUntil,
    };
  o.metrics?.signatureFailed.inc({ reason: sig.code });
  return new AdmpError(SIGNATURE_CODE[sig.code], `agent signature: ${sig.reason}`);
}
