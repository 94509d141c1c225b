// A signed agent mail, both ways: building the .eml (`admp sign`, the outbound
// relay, partners, tests) and reading back what the verifier needs from a parsed
// mail (the ingress pipeline). One module, so what is signed and what is checked
// cannot drift apart (docs/protocol.md §Mail format).
import { randomUUID } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { ParsedMail } from 'mailparser';
import { canonicalJson } from '../core/canonical-json.js';
import type { Envelope } from '../core/envelope.js';
import { parseAddress } from '../core/address.js';
import { signatureHeaders, type Ed25519Impl, type VerifyInput } from '../core/signature.js';

export interface SigningKey {
  /** The sending agent's address. */
  readonly agent: string;
  readonly kid: string;
  /** 32-byte Ed25519 seed. */
  readonly seed: Uint8Array;
}

export interface BuildOptions {
  /** Unix seconds; default the system clock. */
  readonly now?: number;
  /** Default `<uuid@sender domain>`. */
  readonly messageId?: string;
  /** Sets X-Agent-Expires to `now` + this many seconds (docs/protocol.md §6.3); default: none, the receiver's validity. */
  readonly validitySec?: number;
  readonly impl?: Ed25519Impl;
}

export interface SignedMessage {
  readonly eml: Buffer;
  readonly messageId: string;
  /** The JSON envelope part's bytes, as signed. */
  readonly envelopeBytes: Buffer;
}

export const ENVELOPE_MEDIA_TYPE = 'application/json';

/** Builds a complete signed message: text/plain note + application/json envelope (base64, so no MTA can alter its bytes). */
export async function buildSignedMessage(
  envelope: Envelope,
  key: SigningKey,
  opts: BuildOptions = {},
): Promise<SignedMessage> {
  const from = parseAddress(key.agent, 'agent');
  const to = parseAddress(envelope.to, 'to');
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const messageId = opts.messageId ?? `<${randomUUID()}@${from.domain}>`;
  const subject = envelope.subject ?? `ADMP ${envelope.type}`;
  const envelopeBytes = Buffer.from(canonicalJson({ ...envelope, to: to.address }), 'utf8');
  const headers = signatureHeaders(
    {
      agent: from.address,
      kid: key.kid,
      timestamp: now,
      ...(opts.validitySec !== undefined ? { expires: now + opts.validitySec } : {}),
      messageId,
      to: to.address,
      from: from.address,
      subject,
      type: envelope.type,
      correlationId: envelope.correlation_id ?? null,
      body: envelopeBytes,
    },
    key.seed,
    opts.impl,
  );
  const mail = new MailComposer({
    from: from.address,
    to: to.address,
    subject,
    messageId,
    date: new Date(now * 1000),
    headers,
    text: `Agent message of type ${envelope.type} from ${from.address} to ${to.address}.\nThe attached ${ENVELOPE_MEDIA_TYPE} part is the signed ADMP envelope (docs/protocol.md).\n`,
    attachments: [
      {
        filename: 'admp-envelope.json',
        content: envelopeBytes,
        contentType: ENVELOPE_MEDIA_TYPE,
        contentTransferEncoding: 'base64',
      },
    ],
  });
  return { eml: await mail.compile().build(), messageId, envelopeBytes };
}

/** The fields of a received mail the verifier needs, except the delivery's envelope recipient and the parsed envelope. */
export type MailSignatureFields = Omit<VerifyInput, 'envelopeRecipient' | 'envelope' | 'body'> & {
  /** The envelope bytes, or undefined when the mail carries none or several candidates. */
  readonly body: Buffer | undefined;
};

/**
 * Reads a mail parsed by mailparser. The envelope is the one application/json part
 * (exact bytes after transfer decoding); a mail without one may carry the JSON as its
 * text body, which is then canonicalised: CRLF → LF, outer whitespace trimmed.
 */
export function readSignedMail(parsed: ParsedMail): MailSignatureFields {
  // A part may declare no media type (an empty Content-Type, where mailparser gives no
  // string): it is then not the envelope.
  const json = parsed.attachments.filter(
    (a) => typeof a.contentType === 'string' && a.contentType.toLowerCase() === ENVELOPE_MEDIA_TYPE,
  );
  const text = parsed.text?.replace(/\r\n/g, '\n').trim();
  const body = json.length === 1 ? json[0]!.content : json.length === 0 && text ? Buffer.from(text, 'utf8') : undefined;
  const from = parsed.from?.value.length === 1 ? parsed.from.value[0]!.address : undefined;
  return {
    headers: parsed.headerLines.map((h) => ({ name: h.key, value: h.line.slice(h.line.indexOf(':') + 1) })),
    from,
    subject: parsed.subject,
    messageId: parsed.messageId,
    body,
  };
}
