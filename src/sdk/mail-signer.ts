// Signed agent mail for partners who send to ADMP agents by email: what `admp sign`
// does, without Node. The signature comes from the same module the server verifies
// with (src/core/signature-base.ts), so the two cannot drift; the .eml is the layout
// of docs/protocol.md §Mail format: a text/plain note and the JSON envelope as one
// base64 application/json part (base64, so no MTA can alter the signed bytes).
import { canonicalJson } from '../core/canonical-json.js';
import { tryParseAddress } from '../core/address.js';
import { base64, signatureHeadersNoble, type SignatureHeaders } from '../core/signature-base.js';
import { ed25519Seed } from './auth.js';
import type { SendRequest } from './types.js';

export interface PartnerKey {
  /** The sending agent's address. */
  readonly agent: string;
  readonly kid: string;
  /** PKCS#8 PEM or the raw 32-byte Ed25519 seed. */
  readonly privateKey: string | Uint8Array;
}

export interface SignedAgentMail {
  readonly messageId: string;
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  /** The X-Agent-* headers, for a mail library that builds the message itself. */
  readonly headers: SignatureHeaders;
  /** The envelope bytes as signed: send them unchanged as the application/json part. */
  readonly envelope: Uint8Array;
  /** The whole message (RFC 5322, CRLF line ends), ready for SMTP. */
  readonly eml: string;
}

const address = (s: string, field: string): string => {
  const a = tryParseAddress(s);
  if (!a) throw new TypeError(`${field}: "${s}" is not an agent address (local@domain)`);
  return a.address;
};

/** RFC 2047 encoded-word for a non-ASCII header value; ASCII passes as is. */
const headerText = (s: string): string =>
  /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${base64(new TextEncoder().encode(s))}?=`;

/** RFC 5322 §3.3 date-time in UTC. */
const rfc5322Date = (d: Date): string => d.toUTCString().replace(/GMT$/, '+0000');

/** Base64 in lines of 76 characters (RFC 2045 §6.8). */
const wrap76 = (s: string): string => s.replace(/.{1,76}/g, '$&\r\n');

export function signAgentMail(
  envelope: SendRequest,
  key: PartnerKey,
  o: {
    now?: number;
    messageId?: string;
    /** Sets X-Agent-Expires to `now` + this many seconds: the receiver refuses the mail if its MTA first gets it later. */
    validitySec?: number;
  } = {},
): SignedAgentMail {
  const from = address(key.agent, 'agent');
  const to = address(envelope.to, 'to');
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const messageId = o.messageId ?? `<${crypto.randomUUID()}@${from.slice(from.indexOf('@') + 1)}>`;
  const subject = envelope.subject ?? `ADMP ${envelope.type}`;
  const bytes = new TextEncoder().encode(canonicalJson({ ...envelope, to }));
  const headers = signatureHeadersNoble(
    {
      agent: from,
      kid: key.kid,
      timestamp: now,
      ...(o.validitySec !== undefined ? { expires: now + o.validitySec } : {}),
      messageId,
      to,
      from,
      subject,
      type: envelope.type,
      correlationId: envelope.correlation_id ?? null,
      body: bytes,
    },
    ed25519Seed(key.privateKey),
  );
  const boundary = `admp-${crypto.randomUUID()}`;
  const eml = [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: ${headerText(subject)}`,
    `Message-ID: ${messageId}`,
    `Date: ${rfc5322Date(new Date(now * 1000))}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Agent message of type ${envelope.type} from ${from} to ${to}.`,
    'The attached application/json part is the signed ADMP envelope (docs/protocol.md).',
    `--${boundary}`,
    'Content-Type: application/json; name="admp-envelope.json"',
    'Content-Disposition: attachment; filename="admp-envelope.json"',
    'Content-Transfer-Encoding: base64',
    '',
    wrap76(base64(bytes)) + `--${boundary}--`,
    '',
  ].join('\r\n');
  return { messageId, from, to, subject, headers, envelope: bytes, eml };
}
