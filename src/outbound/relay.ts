// The SMTP relay the outbound worker submits to: Mailcow's submission port with a
// login, or a Postfix on the same network; it DKIM-signs and delivers. nodemailer
// with a connection pool. Each submission asks for delivery status notifications
// (RFC 3461): NOTIFY=SUCCESS,FAILURE for the recipient, RET=HDRS, ENVID = our id.
import nodemailer from 'nodemailer';
import type { Config } from '../config.js';
import { relayAccepted, relayRefused, type RelayOutcome } from './relay-answer.js';
import type { OutboundMail } from './render.js';

export interface Relay {
  submit(mail: OutboundMail, envelopeId: string): Promise<RelayOutcome>;
  close(): void;
}

export function createRelay(
  config: Pick<Config, 'relayUrl' | 'relayTimeoutMs' | 'outboundConcurrency' | 'domains'>,
): Relay {
  const transport = nodemailer.createTransport({
    url: config.relayUrl,
    pool: true,
    maxConnections: config.outboundConcurrency,
    connectionTimeout: config.relayTimeoutMs,
    greetingTimeout: config.relayTimeoutMs,
    socketTimeout: config.relayTimeoutMs,
    // EHLO name: our agents domain rather than the container's host name.
    name: config.domains[0],
    logger: false,
  });
  return {
    async submit(mail, envelopeId) {
      try {
        const info = await transport.sendMail({
          envelope: { from: mail.from, to: [mail.to] },
          raw: mail.raw,
          dsn: { id: envelopeId, return: 'headers', notify: ['success', 'failure'], recipient: mail.to },
        });
        return relayAccepted(info);
      } catch (err) {
        return relayRefused(err);
      }
    },
    close: () => transport.close(),
  };
}
