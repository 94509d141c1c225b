// Test mail: DKIM keys (node:crypto) with the TXT record that publishes them, DKIM signing
// (mailauth), and SMTP submission with XCLIENT (swaks), so a loopback test can pose as a
// remote MTA whose address and HELO pass SPF.
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { dkimSignatureField } from '../../src/mail/dkim-sign.js';

export interface DkimKey {
  readonly domain: string;
  readonly selector: string;
  readonly privateKeyPem: string;
  /** Where the key is published: `<selector>._domainkey.<domain>`. */
  readonly dnsName: string;
  /** The TXT value (RFC 6376 3.6.1): `v=DKIM1; k=rsa; p=<base64 SPKI>`. */
  readonly txt: string;
}

export function dkimKey(domain: string, selector: string): DkimKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return {
    domain,
    selector,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    dnsName: `${selector}._domainkey.${domain}`,
    txt: `v=DKIM1; k=rsa; p=${p}`,
  };
}

export interface MessageSpec {
  from: string;
  to: readonly string[];
  subject?: string;
  body?: string;
  /** Extra header lines, in order, e.g. a forged `Authentication-Results`. */
  headers?: readonly string[];
}

/** An RFC 5322 message with CRLF line ends and a unique Message-ID. */
export function buildMessage(m: MessageSpec): string {
  const domain = m.from.split('@')[1] ?? 'test.example';
  const lines = [
    `From: <${m.from}>`,
    `To: ${m.to.map((a) => `<${a}>`).join(', ')}`,
    `Subject: ${m.subject ?? 'test'}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${randomBytes(8).toString('hex')}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...(m.headers ?? []),
    '',
    m.body ?? 'hello',
    '',
  ];
  return lines.join('\r\n');
}

/** The message with a relaxed/relaxed rsa-sha256 DKIM-Signature prepended. */
export async function signMessage(raw: string, key: DkimKey): Promise<string> {
  return (await dkimSignatureField(raw, key)) + raw;
}

export interface SendOptions {
  port: number;
  /** Envelope sender; '' is the null sender of bounces. */
  from: string;
  to: readonly string[];
  data: string;
  /** XCLIENT (Postfix XCLIENT_README): pose as this remote client. */
  clientAddr?: string;
  clientName?: string;
  helo?: string;
  /** XCLIENT LOGIN: the SASL user Postfix passes to the milter as {auth_authen}. */
  login?: string;
  /** More swaks options, e.g. `--tls`, `--proxy-version 2`, `--quit-after RCPT`. */
  extra?: readonly string[];
}

export interface SmtpOutcome {
  /** The reply to the end of DATA (or to the command that failed first), e.g. 250, 554, 451. */
  readonly code: number;
  /** That reply's text, e.g. `5.7.1 Agent mailbox policy: …`. */
  readonly text: string;
  /** The Postfix queue id from `250 2.0.0 Ok: queued as ID`. */
  readonly queueId?: string;
  readonly transcript: string;
}

/** Sends one message with swaks (one SMTP session) and reports the server's verdict. */
export async function sendMail(o: SendOptions): Promise<SmtpOutcome> {
  const args = [
    '--server',
    `127.0.0.1:${o.port}`,
    '--from',
    o.from === '' ? '<>' : o.from,
    '--to',
    o.to.join(','),
    '--helo',
    o.helo ?? 'mail.sender.example',
    '--data',
    '-',
    '--timeout',
    '60',
    '--hide-informational',
  ];
  if (o.clientAddr)
    args.push('--xclient-addr', o.clientAddr, '--xclient-name', o.clientName ?? o.helo ?? 'mail.sender.example');
  if (o.login) args.push('--xclient-login', o.login);
  args.push(...(o.extra ?? []));
  const transcript = await new Promise<string>((ok, fail) => {
    // swaks exits non-zero on any 4xx/5xx; the transcript is what matters.
    const child = execFile('swaks', args, { timeout: 90_000 }, (err, stdout, stderr) => {
      if (err && !stdout) fail(new Error(`swaks: ${err.message}\n${stderr}`));
      else ok(stdout + stderr);
    });
    child.stdin!.end(o.data);
  });
  return parseTranscript(transcript);
}

// swaks marks server lines `<-` (ok) and `<**` (error), `<~` and `<~*` inside TLS; the verdict is the last reply seen.
function parseTranscript(transcript: string): SmtpOutcome {
  const replies = transcript
    .split('\n')
    .map((l) => /^\s*<(?:-|\*\*|~\*?)\s+(\d{3})[ -](.*)$/.exec(l))
    .filter((m) => m !== null);
  const verdict = replies.filter((m) => !/^221\b/.test(`${m[1]}`)).at(-1);
  if (!verdict) throw new Error(`no SMTP reply in swaks output:\n${transcript}`);
  const text = verdict[2]!.trim();
  const queueId = /queued as ([0-9A-Za-z]+)/.exec(text)?.[1];
  return { code: Number(verdict[1]), text, ...(queueId ? { queueId } : {}), transcript };
}
