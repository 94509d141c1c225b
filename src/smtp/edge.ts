// The standalone SMTP edge (RFC 5321): port 25 of a bare server, for users without
// Mailcow. Accepts mail for our agents domains only (never an open relay), one
// recipient per transaction, verifies SPF/DKIM/DMARC/ARC itself (./authenticate.ts),
// and hands the mail to the same ingress pipeline as the other roads. The reply to
// DATA is given only after the pipeline answered: 250 once the row is committed, the
// precise 5xx of a refusal, 4xx (451 4.3.0) for a fault of ours.
import type { AddressInfo, BlockList, Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config.js';
import { AdmpError, smtpReplyText, toAdmpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Directory } from '../mailbox/directory.js';
import { asciiLower, tryParseRecipient } from '../core/address.js';
import { allowList, isAllowed } from '../core/cidr.js';
import { cachedResolver, type Resolver } from '../ingress/domain-auth.js';
import type { Ingest } from '../ingress/ingest.js';
import { createClientLimits, type ClientLimits } from './client-limits.js';
import { readProxyHeader } from './proxy-header.js';
import { watchTlsFiles } from '../net/tls-files.js';
import { logConnectionErrors } from '../net/connection-errors.js';
import { verifyMail, withoutOurAuthResults } from './authenticate.js';

export interface SmtpEdgeDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly ingest: Ingest;
  readonly directory: Directory;
  /** DNS of the configured servers (ADMP_DNS_SERVERS) for SPF, DKIM, DMARC and ARC. */
  readonly dnsResolve: Resolver;
  readonly metrics?: Metrics;
}

export interface SmtpEdge {
  readonly server: SMTPServer;
  readonly limits: ClientLimits;
  listen(port: number, host: string): Promise<AddressInfo>;
}

type Reply = Error & { responseCode: number };

/** A reply smtp-server writes as `<code> <enhanced> <text>` (enhanced status codes, RFC 3463, are in the text). */
const reply = (code: number, enhanced: string, text: string): Reply =>
  Object.assign(new Error(`${enhanced} ${text}`), { responseCode: code });
const fromError = (err: AdmpError): Reply => reply(err.smtp.code, err.smtp.enhanced, smtpReplyText(err));

export type RefusalReason =
  | 'too_many_connections'
  | 'rate_limited'
  | 'message_rate_limited'
  | 'tls_required'
  | 'relay_denied'
  | 'unknown_recipient'
  | 'unknown_tenant'
  | 'address_revoked'
  | 'too_many_recipients'
  | 'too_large'
  | 'bad_proxy_header'
  | 'report_refused';

export function createSmtpEdge({ config, log, ingest, directory, dnsResolve, metrics }: SmtpEdgeDeps): SmtpEdge {
  const hostname = config.smtpHostname || osHostname();
  const tls =
    config.smtpTlsCert || config.smtpTlsKey
      ? watchTlsFiles({ cert: config.smtpTlsCert, key: config.smtpTlsKey }, log, 'smtp')
      : undefined;
  const limits = createClientLimits({
    perIp: config.smtpMaxConnectionsPerIp,
    connectionsPerWindow: config.smtpRateConnections,
    messagesPerWindow: config.smtpRateMessages,
    windowSec: config.smtpRateWindowSec,
  });
  // SPF, DMARC and DKIM key answers are kept a minute: a burst from one sender asks them once.
  const resolver = cachedResolver(dnsResolve);
  const admitted = new Set<string>();

  const refuse = (session: SMTPServerSession, reason: RefusalReason, r: Reply, extra: object = {}): Reply => {
    metrics?.smtpRefused.inc({ reason });
    log.info(
      { event: 'smtp_refused', reason, ip: session.remoteAddress, session: session.id, reply: r.message, ...extra },
      `SMTP ${reason}`,
    );
    return r;
  };

  const server = new SMTPServer({
    name: hostname,
    banner: 'ADMP agent mail',
    authOptional: true,
    disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(tls ? tls.current : {}),
    // PTR lookups would go to the system resolver, per connection; the Received line carries the address.
    disableReverseLookup: true,
    hideENHANCEDSTATUSCODES: true,
    hideSMTPUTF8: false,
    hide8BITMIME: false,
    hidePIPELINING: false,
    size: config.maxMailBytes,
    maxClients: config.smtpMaxConnections,
    socketTimeout: config.smtpTimeoutMs,
    // After close() (shutdown), transactions in progress get the grace period; then 421 (RFC 5321 §3.8).
    closeTimeout: Math.max(1, config.shutdownGraceMs),
    logger: false,
    onConnect(session, cb) {
      if (tls?.refresh()) server.updateSecureContext(tls.current);
      limits.admit(session.remoteAddress).then(
        (admission) => {
          if (admission === 'too_many_connections')
            return cb(refuse(session, admission, reply(421, '4.7.0', 'too many connections from your address')));
          if (admission === 'rate_limited')
            return cb(refuse(session, admission, reply(421, '4.7.0', 'too many connections; try again later')));
          admitted.add(session.id);
          metrics?.smtpConnections.inc();
          metrics?.smtpOpen.set(admitted.size);
          log.debug({ event: 'smtp_connect', ip: session.remoteAddress, session: session.id }, 'SMTP connection');
          cb();
        },
        (err) => cb(fromError(toAdmpError(err))),
      );
    },
    onSecure(_socket, session, cb) {
      metrics?.smtpTls.inc();
      log.debug({ event: 'smtp_tls', ip: session.remoteAddress, session: session.id }, 'STARTTLS done');
      cb();
    },
    onClose(session) {
      if (!admitted.delete(session.id)) return;
      limits.release(session.remoteAddress);
      metrics?.smtpOpen.set(admitted.size);
    },
    onMailFrom(_address, session, cb) {
      // RFC 3207 §4: 530 5.7.0 until STARTTLS when the server's policy requires it.
      if (config.smtpRequireTls && !session.secure)
        return cb(refuse(session, 'tls_required', reply(530, '5.7.0', 'Must issue a STARTTLS command first')));
      limits.message(session.remoteAddress).then(
        (ok) =>
          cb(
            ok
              ? null
              : refuse(session, 'message_rate_limited', reply(451, '4.7.0', 'too many messages; try again later')),
          ),
        (err) => cb(fromError(toAdmpError(err))),
      );
    },
    onRcptTo(address, session, cb) {
      const rcpt = address.address;
      // One recipient per transaction: the agent signature names its recipient, so each
      // gets its own DATA reply. RFC 5321 §4.5.3.1.10: the client sends the rest anew.
      if (session.envelope.rcptTo.length >= 1)
        return cb(
          refuse(session, 'too_many_recipients', reply(452, '4.5.3', 'one recipient per message; send the next again')),
        );
      const domain = asciiLower(rcpt.slice(rcpt.lastIndexOf('@') + 1));
      if (!directory.isLocalDomain(domain))
        return cb(refuse(session, 'relay_denied', reply(550, '5.7.1', 'relay access denied'), { rcpt }));
      // Bounces to our VERP return path are delivery reports, not agent mail.
      const returnPath = ingest.checkReturnPath(rcpt);
      if (returnPath instanceof AdmpError)
        return cb(refuse(session, 'report_refused', fromError(returnPath), { rcpt }));
      if (returnPath !== 'not_return_path') return cb();
      if (!tryParseRecipient(rcpt))
        return cb(refuse(session, 'unknown_recipient', reply(550, '5.1.1', 'no such agent'), { rcpt }));
      directory.resolve(rcpt, 'recipient').then(
        () => cb(),
        (err) => {
          const e = toAdmpError(err);
          cb(
            e.code === 'unknown_recipient' || e.code === 'unknown_tenant' || e.code === 'address_revoked'
              ? refuse(session, e.code, fromError(e), { rcpt })
              : fromError(e),
          );
        },
      );
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (err) => cb(err));
      stream.on('end', () => {
        if (stream.sizeExceeded)
          return cb(
            refuse(session, 'too_large', reply(552, '5.3.4', `message is larger than ${config.maxMailBytes} bytes`)),
          );
        void deliver(Buffer.concat(chunks), session).then(
          (text) => cb(null, text),
          (err: Reply) => cb(err),
        );
      });
    },
  });
  logConnectionErrors(server, log, 'smtp');

  async function deliver(data: Buffer, session: SMTPServerSession): Promise<string> {
    // We are the MTA: the mail is received at the end of DATA, the time of our Received
    // line; its freshness is judged then, not after the SPF and DKIM look-ups.
    const receivedAt = new Date();
    const recipients = session.envelope.rcptTo.map((r) => r.address);
    const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    try {
      const verdicts = await verifyMail(
        data,
        { ip: session.remoteAddress, helo: session.hostNameAppearsAs, sender: envelopeFrom, hostname },
        resolver,
      );
      const trace = `${verdicts.headers}${received(session, hostname, recipients[0] ?? '', receivedAt)}`;
      const raw = Buffer.concat([Buffer.from(trace, 'utf8'), withoutOurAuthResults(data, hostname)]);
      const results = await ingest.ingest(
        {
          road: 'smtp',
          raw,
          envelopeFrom,
          recipients,
          trusted: verdicts.auth,
          clientIp: session.remoteAddress,
          queueId: session.id,
          receivedAt: Math.floor(receivedAt.getTime() / 1000),
        },
        { atomic: true },
      );
      const [r] = results;
      if (!r) throw new AdmpError('internal', 'no recipient');
      if (r.kind === 'stored') return `2.6.0 <${r.recipient}> stored as ${r.id}${r.duplicate ? ' (duplicate)' : ''}`;
      if (r.kind === 'report') return '2.6.0 delivery report recorded';
      throw fromError(r.error);
    } catch (err) {
      if (err instanceof Error && 'responseCode' in err) throw err;
      log.error({ err, event: 'ingest', road: 'smtp' }, 'ingest failed');
      throw fromError(toAdmpError(err));
    }
  }

  const proxies: BlockList | undefined = config.smtpProxy.length > 0 ? allowList(config.smtpProxy) : undefined;
  if (proxies) {
    // Connections from the listed balancers start with a PROXY header, read here before
    // the SMTP session begins; smtp-server's own reader knows only version 1.
    server.server.removeAllListeners('connection');
    server.server.on('connection', (socket: Socket) => {
      if (!isAllowed(proxies, socket.remoteAddress ?? '')) return server.connect(socket, {});
      socket.on('error', () => undefined);
      readProxyHeader(socket, config.smtpTimeoutMs).then(
        (client) => server.connect(socket, client ? { remoteAddress: client.address, remotePort: client.port } : {}),
        (err: Error) => {
          metrics?.smtpRefused.inc({ reason: 'bad_proxy_header' });
          log.warn({ event: 'smtp_refused', reason: 'bad_proxy_header', ip: socket.remoteAddress, err: err.message });
          socket.destroy();
        },
      );
    });
  }

  return {
    server,
    limits,
    listen(port, host) {
      return new Promise((ok, fail) => {
        server.server.once('error', fail);
        server.listen(port, host, () => {
          server.server.removeListener('error', fail);
          ok(server.server.address() as AddressInfo);
        });
      });
    },
  };
}

/** Our trace field (RFC 5321 §4.4), with the protocol names of RFC 3848 (ESMTPS after STARTTLS). */
function received(session: SMTPServerSession, hostname: string, rcpt: string, at: Date): string {
  const helo = (session.hostNameAppearsAs || 'unknown').replace(/[^\x21-\x7e]/g, '');
  const proto = session.secure ? 'ESMTPS' : 'ESMTP';
  return `Received: from ${helo} ([${session.remoteAddress}])\r\n\tby ${hostname} (ADMP) with ${proto} id ${session.id}\r\n\tfor <${rcpt}>; ${at.toUTCString().replace('GMT', '+0000')}\r\n`;
}
