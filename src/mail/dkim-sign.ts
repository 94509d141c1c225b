// DKIM signing (RFC 6376 §5), rsa-sha256 relaxed/relaxed as Mailcow signs, with mailauth:
// the doctor's probe mail, and the partners of the tests and benchmarks.
//
// The signature time is read once and handed to mailauth. Left to itself, mailauth reads
// the clock twice, rounding to the nearest second each time: once for the t= tag of the
// header it signs, once for the header it writes after the RSA signature. A signature
// made across a half second (about one in 500 on an idle machine, more under load)
// carries a t= one higher than the one signed, and every verifier (mailauth, Rspamd)
// answers DKIM `fail`.
import { dkimSign } from 'mailauth/lib/dkim/sign.js';

export interface DkimSigningKey {
  /** d= */
  readonly domain: string;
  /** s= */
  readonly selector: string;
  readonly privateKeyPem: string;
}

export interface DkimSignOptions {
  /** The fields to sign, colon-separated (mailauth's default list otherwise). */
  readonly headerList?: string;
  /** The signature time (t=); now by default. */
  readonly at?: Date;
}

/** The DKIM-Signature field of `raw`, folded and CRLF-terminated, to put on top of it. */
export async function dkimSignatureField(
  raw: Buffer | string,
  key: DkimSigningKey,
  o: DkimSignOptions = {},
): Promise<string> {
  const signer = {
    signingDomain: key.domain,
    selector: key.selector,
    privateKey: key.privateKeyPem,
    algorithm: 'rsa-sha256',
  };
  const res = await dkimSign(raw, {
    ...signer,
    canonicalization: 'relaxed/relaxed',
    signTime: o.at ?? new Date(),
    // mailauth splits a colon-separated string (lib/tools.js getSigningHeaderLines); an
    // array, which its typings ask for, silently falls back to its default list.
    ...(o.headerList ? { headerList: o.headerList as unknown as string[] } : {}),
    // mailauth signs with the `signatureData` entries only; its typings also demand the top-level fields.
    signatureData: [signer],
  });
  if (res.errors.length > 0 || res.signatures.trim() === '')
    throw new Error(`DKIM signing failed: ${res.errors.map(String).join('; ') || 'no signature'}`);
  return res.signatures;
}
