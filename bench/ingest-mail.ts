// The partner mail the ingest bench delivers: agent-signed (buildSignedMessage, the
// code path partners use) and DKIM-signed (mailauth, rsa-2048, relaxed/relaxed) by
// the partner's domain, of ~5 KB or ~100 KB, every copy with its own Message-ID: each
// claims a new replay key (agent + Message-ID, docs/protocol.md §11) with its keep_until,
// so the measured path is the replay cache's on every mail, never its duplicate shortcut.
//
// All the crypto is done before the measured window. One template per set is signed
// with DKIM; its h= list leaves out Message-ID and the X-Agent-* fields (RFC 6376
// §5.4 lets the signer choose), so that each copy only needs a new Message-ID and a
// new agent signature (~40 µs) instead of an RSA-2048 signature (~1.5 ms). The
// verifier does the same work for every copy: body hash, header canonicalisation,
// one RSA verify. Copies are kept as a unique head plus one shared tail.
import { randomUUID, sign } from 'node:crypto';
import { dkimSignatureField } from '../src/mail/dkim-sign.js';
import { privateKeyFromSeed, signatureBase, type SignedFields } from '../src/core/signature.js';
import { buildSignedMessage } from '../src/mail/signed-message.js';
import { dkimKey, type DkimKey } from '../test/helpers/mail.js';
import { signer, type TestSigner } from '../test/helpers/agent-mail.js';
import { DOMAIN, TYPE } from './workload.js';

export const PARTNER_DOMAIN = 'agents.partner.bench';
export const INGEST_RECIPIENT = 'ingest';
export const RECIPIENT_ADDRESS = `${INGEST_RECIPIENT}@${DOMAIN}`;
/** authserv-id of "our" MTA on the LMTP road (ADMP_MTA_HOSTNAME). */
export const MTA_HOSTNAME = 'mx.agents.bench';

// The fields DKIM signs (all but Message-ID and X-Agent-Signature).
const DKIM_HEADERS = 'from:to:subject:date:mime-version:content-type:x-agent-id:x-agent-kid:x-agent-timestamp';
// A Message-ID with the length of every copy's, to be replaced in head and signature base.
const MID_PLACEHOLDER = `00000000-0000-4000-8000-000000000000@${PARTNER_DOMAIN}`;

export interface Partner {
  readonly signer: TestSigner;
  readonly dkim: DkimKey;
}

export function partner(): Partner {
  return { signer: signer(`worker@${PARTNER_DOMAIN}`, 'bench-1'), dkim: dkimKey(PARTNER_DOMAIN, 's2048') };
}

/** `n` distinct messages, each `heads[i]` followed by `tail`. */
export interface MailSet {
  readonly heads: readonly Buffer[];
  readonly tail: Buffer;
  readonly bytes: number;
}

export const message = (set: MailSet, i: number): Buffer => Buffer.concat([set.heads[i % set.heads.length]!, set.tail]);

// Filler text for the envelope body (JSON, base64 in the mail: ×4/3 on the wire).
const filler = (bytes: number): string =>
  'Quarterly capacity review, incidents and the migration plan. '.repeat(Math.ceil(bytes / 62)).slice(0, bytes);

async function template(
  p: Partner,
  fillerBytes: number,
  now: number,
): Promise<{ raw: string; fields: SignedFields; signature: string }> {
  const envelope = {
    to: RECIPIENT_ADDRESS,
    type: TYPE,
    subject: 'ingest bench',
    correlation_id: randomUUID(),
    body: { task: 'summarize', attachment: { name: 'operations-review.txt', text: filler(fillerBytes) } },
  };
  const built = await buildSignedMessage(envelope, p.signer, { now, messageId: `<${MID_PLACEHOLDER}>` });
  const raw = built.eml.toString('latin1');
  const signature = /^X-Agent-Signature:\s*([A-Za-z0-9+/=]{88})\r\n/m.exec(raw)?.[1];
  if (!signature) throw new Error('template: no X-Agent-Signature line');
  const fields: SignedFields = {
    agent: p.signer.agent,
    kid: p.signer.kid,
    timestamp: now,
    messageId: MID_PLACEHOLDER,
    to: RECIPIENT_ADDRESS,
    from: p.signer.agent,
    subject: envelope.subject,
    type: TYPE,
    correlationId: envelope.correlation_id,
    body: built.envelopeBytes,
  };
  return { raw, fields, signature };
}

/**
 * `count` copies of a message of about `bytes` bytes. `prefix` is prepended to every
 * head (the LMTP road's Authentication-Results of our MTA).
 */
export async function mailSet(
  p: Partner,
  o: { bytes: number; count: number; prefix?: string; now?: number },
): Promise<MailSet> {
  const now = o.now ?? Math.floor(Date.now() / 1000);
  // Size the filler from a first build: the rest of the message is fixed overhead.
  const probe = await template(p, 0, now);
  const overhead = probe.raw.length + 600; // + the DKIM-Signature field
  const t = await template(p, Math.max(0, Math.floor(((o.bytes - overhead) * 3) / 4)), now);
  const dkim = await dkimSignatureField(t.raw, p.dkim, { headerList: DKIM_HEADERS });
  const full = `${o.prefix ?? ''}${dkim}${t.raw}`;
  const split = full.indexOf('\r\n\r\n') + 4;
  const head = full.slice(0, split);
  const base = signatureBase(t.fields);
  const key = privateKeyFromSeed(p.signer.seed);
  const heads = Array.from({ length: o.count }, () => {
    const mid = `${randomUUID()}@${PARTNER_DOMAIN}`;
    const sig = sign(null, Buffer.from(base.replace(MID_PLACEHOLDER, mid), 'utf8'), key).toString('base64');
    return Buffer.from(head.replace(MID_PLACEHOLDER, mid).replace(t.signature, sig), 'latin1');
  });
  const tail = Buffer.from(full.slice(split), 'latin1');
  return { heads, tail, bytes: heads[0]!.length + tail.length };
}

/** The plugin's X-Rspamd-Auth for a message whose DKIM Rspamd found good (rspamd/agents_bridge.lua). */
export const RSPAMD_AUTH = JSON.stringify({
  dkim: [{ result: 'allow', domain: PARTNER_DOMAIN, selector: 's2048' }],
  spf: { symbol: 'R_SPF_ALLOW' },
  dmarc: { symbol: 'DMARC_POLICY_ALLOW' },
});

/** Our MTA's verdict, topmost in the message, on the LMTP road. */
export const AUTHENTICATION_RESULTS = `Authentication-Results: ${MTA_HOSTNAME}; dkim=pass header.d=${PARTNER_DOMAIN} header.s=s2048 header.b=bench; spf=pass smtp.mailfrom=${PARTNER_DOMAIN}\r\n`;
