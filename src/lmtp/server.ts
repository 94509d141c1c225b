// The LMTP road (RFC 2033): Postfix hands mail for the agents domains to us
// (postfix/custom_transport.pcre). One reply per accepted RCPT, in RCPT order,
// after DATA: 250 stored, 550 5.7.x refused, 451/452 4.x.x when the fault is ours,
// never 5xx for a fault of ours. Only the topmost Authentication-Results header of
// our own MTA (its authserv-id) is trusted.
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config.js';
import { allowList, isAllowed } from '../core/cidr.js';
import { asciiLower } from '../core/address.js';
import { AdmpError, smtpReplyText, toAdmpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Directory } from '../mailbox/directory.js';
import { headerFields, trustedAuthResults } from '../ingress/authentication-results.js';
import { receivedByUs } from '../ingress/received.js';
import type { Ingest } from '../ingress/ingest.js';
import { logConnectionErrors } from '../net/connection-errors.js';

/** An error smtp-server writes as `<code> <enhanced> <text>` (we put RFC 3463 codes in the text ourselves). */
export function lmtpError(err: AdmpError): Error & { responseCode: number } {
  return Object.assign(new Error(`${err.smtp.enhanced} ${smtpReplyText(err)}`), { responseCode: err.smtp.code });
}

export interface LmtpDeps {
  config: Config;
  log: Logger;
  ingest: Ingest;
  directory: Directory;
}

export function createLmtpServer({ config, log, ingest, directory }: LmtpDeps): SMTPServer {
  const clients = allowList(config.lmtpAllow);
  const server = new SMTPServer({
    lmtp: true,
    name: config.mtaHostname || 'admp-bridge',
    banner: 'ADMP agent mail receiver',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    // Postfix's XFORWARD (lmtp_send_xforward_command) tells us the original client and queue id.
    useXForward: true,
    // Enhanced status codes (RFC 3463) are written into the reply text by lmtpError,
    // so that each refusal carries its precise code (5.7.7, 5.1.1, 4.3.0 ...).
    hideENHANCEDSTATUSCODES: true,
    size: config.maxMailBytes,
    logger: false,
    // After close() (shutdown), transactions in progress get this long to finish; then
    // every client still connected is told 421 (RFC 5321 §3.8) instead of being dropped.
    closeTimeout: Math.max(1, config.shutdownGraceMs),
    onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void) {
      if (isAllowed(clients, session.remoteAddress)) return cb();
      log.warn({ event: 'lmtp_refused_client', ip: session.remoteAddress }, 'LMTP client not in ADMP_LMTP_ALLOW');
      cb(lmtpError(new AdmpError('forbidden', 'client not allowed')));
    },
    onRcptTo(address, session, cb) {
      const rcpt = address.address;
      // smtp-server folds a repeated recipient into the first (case-insensitively) after
      // answering 250 to both, which would leave the client waiting for a second reply.
      const lower = asciiLower(rcpt);
      if (session.envelope.rcptTo.some((r) => asciiLower(r.address) === lower))
        return cb(
          lmtpError(new AdmpError('duplicate_recipient', `<${rcpt}> was already accepted in this transaction`)),
        );
      // Bounces to our VERP return path are reports, not agent mail.
      const returnPath = ingest.checkReturnPath(rcpt);
      if (returnPath instanceof AdmpError) return cb(lmtpError(returnPath));
      if (returnPath !== 'not_return_path') return cb();
      directory.resolve(rcpt, 'recipient').then(
        (r) =>
          cb(
            r.kind === 'local'
              ? null
              : lmtpError(new AdmpError('policy_denied', `${rcpt} is not in our agents domains`)),
          ),
        (err) => cb(lmtpError(toAdmpError(err))),
      );
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (err) => cb(err));
      stream.on('end', () => {
        const recipients = session.envelope.rcptTo.map((r) => r.address);
        // RFC 2033 §4.2: one reply per accepted recipient, refusals included.
        if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
          const tooBig = new AdmpError(
            'payload_too_large',
            `message over ${config.maxMailBytes} bytes (ADMP_MAX_MAIL_BYTES)`,
          );
          log.info(
            { event: 'ingest', road: 'lmtp', outcome: 'too_large', limit: config.maxMailBytes },
            'mail over the size limit refused',
          );
          return cb(null, recipients.map(() => lmtpError(tooBig)) as unknown as string);
        }
        const raw = Buffer.concat(chunks);
        const fields = headerFields(raw);
        // smtp-server keeps XFORWARD attributes under their upper-case names (XFORWARD_README).
        const queueId = session.xForward?.get('IDENT') ? String(session.xForward.get('IDENT')) : undefined;
        void ingest
          .ingest(
            {
              road: 'lmtp',
              raw,
              envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              recipients,
              trusted: trustedAuthResults(fields, config.mtaHostname),
              // Freshness is judged at our MTA's first receipt, not at this (maybe retried) delivery.
              receivedAt: receivedByUs(fields, config.mtaHostname),
              clientIp: String(session.xForward?.get('ADDR') ?? session.remoteAddress),
              queueId,
            },
            { atomic: false },
          )
          .then((results) =>
            cb(
              null,
              results.map((r) =>
                r.kind === 'stored' || r.kind === 'report'
                  ? `2.6.0 <${r.recipient}> ${r.kind === 'stored' ? `stored as ${r.id}${r.duplicate ? ' (duplicate)' : ''}` : 'delivery report recorded'}`
                  : lmtpError(r.error),
              ) as unknown as string,
            ),
          );
      });
    },
  });
  logConnectionErrors(server, log, 'lmtp');
  return server;
}
