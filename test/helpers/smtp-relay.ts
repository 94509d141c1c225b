// A scripted SMTP relay on 127.0.0.1 (smtp-server, DSN extension on): records every
// transaction with its envelope and DSN parameters, and answers each recipient as the
// test says (`reply(rcpt)` → 250, or a 4xx/5xx code with text), for outbound tests
// that need exact control over the relay's answers.
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

export interface RelayedMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly ret?: string;
  readonly envid?: string;
  readonly notify?: readonly string[];
  readonly raw: Buffer;
}

export type RelayReply = { code: number; text: string } | 'accept';

export interface ScriptedRelay {
  readonly url: string;
  readonly mails: RelayedMail[];
  /** RCPT TO attempts, accepted or not. */
  readonly attempts: string[];
  reply: (rcpt: string) => RelayReply;
  stop(): Promise<void>;
}

export async function startScriptedRelay(): Promise<ScriptedRelay> {
  const relay = {
    mails: [] as RelayedMail[],
    attempts: [] as string[],
    reply: (_rcpt: string): RelayReply => 'accept',
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    hideDSN: false,
    hideENHANCEDSTATUSCODES: false,
    logger: false,
    // Clients that keep pooled connections open must not delay the test's teardown.
    closeTimeout: 200,
    onRcptTo(address, _session, cb) {
      relay.attempts.push(address.address);
      const r = relay.reply(address.address);
      if (r === 'accept') return cb();
      cb(Object.assign(new Error(r.text), { responseCode: r.code }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const env = session.envelope;
        const rcpt = env.rcptTo[0];
        relay.mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          ...(env.dsn?.ret ? { ret: env.dsn.ret } : {}),
          ...(env.dsn?.envid ? { envid: env.dsn.envid } : {}),
          ...(rcpt?.dsn?.notify ? { notify: rcpt.dsn.notify } : {}),
          raw: Buffer.concat(chunks),
        });
        cb(null, 'Ok: queued as T1');
      });
    },
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const port = (server.server.address() as AddressInfo).port;
  return Object.assign(relay, {
    url: `smtp://127.0.0.1:${port}`,
    stop: () => new Promise<void>((ok) => server.close(() => ok())),
  });
}
