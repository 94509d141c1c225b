// Verifies a raw .eml the way the ingress pipeline does: mailparser, readSignedMail,
// the parsed JSON envelope, verifySignature. Shared by the signature and key tests.
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { verifySignature, type KeyResolver, type VerifyResult } from '../../src/core/signature.js';
import { readSignedMail } from '../../src/mail/signed-message.js';

export interface VerifyEmlOptions {
  /** The envelope recipient (RCPT TO). */
  readonly rcpt: string;
  /** Unix seconds. */
  readonly now: number;
  readonly clockSkewSec: number;
  readonly validitySec?: number;
  readonly maxValiditySec?: number;
  readonly receivedAt?: number;
  readonly resolveKey: KeyResolver;
}

export async function verifyEml(eml: string | Buffer, o: VerifyEmlOptions): Promise<VerifyResult> {
  const fields = readSignedMail(await simpleParser(Buffer.isBuffer(eml) ? eml : Buffer.from(eml, 'utf8')));
  assert.ok(fields.body, 'the mail carries an envelope');
  return verifySignature(
    { ...fields, body: fields.body, envelopeRecipient: o.rcpt, envelope: JSON.parse(fields.body.toString('utf8')) },
    o,
  );
}

export const outcome = (r: VerifyResult): string => (r.ok ? 'ok' : r.code);
