// The SMTP edge on a real socket in front of the real core: the partner world of the
// ingress e2e tests (DKIM key, SPF and DMARC of partner.example on the loopback DNS
// server, the partner agent's key pinned, a policy rule admitting it), with SPF also
// naming 127.0.0.1, where swaks and Postfix connect from.
import type { TestContext } from 'node:test';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createSmtpEdge, type SmtpEdge } from '../../src/smtp/edge.js';
import { LineReader } from '../helpers/lmtp-client.js';
import { sendMail, type SmtpOutcome } from '../helpers/mail.js';
import { PARTNER, PARTNER_MTA, startPartnerWorld, type PartnerMail, type PartnerWorld } from '../e2e/partner.js';

export const EDGE_HOST = 'mx.agents.example.com';

export interface EdgeWorld extends PartnerWorld {
  /** Starts an edge with these settings over the world's config; stopped when the test ends. */
  edge(settings?: Partial<Config>): Promise<{ edge: SmtpEdge; port: number }>;
  /** swaks to the edge at `port`, as the partner's agent unless `from` is given. */
  swaks(
    port: number,
    to: readonly string[],
    mail: PartnerMail | string,
    o?: { from?: string; extra?: readonly string[] },
  ): Promise<SmtpOutcome>;
}

export async function startEdgeWorld(t: TestContext, env: Record<string, string> = {}): Promise<EdgeWorld> {
  const world = await startPartnerWorld(t, { ADMP_SMTP_HOSTNAME: EDGE_HOST, ...env });
  world.dns.setTxt(PARTNER, `v=spf1 ip4:${PARTNER_MTA.clientAddr} ip4:127.0.0.1 -all`);
  return {
    ...world,
    async edge(settings = {}) {
      const edge = createSmtpEdge({
        config: { ...world.api.config, ...settings },
        log: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
        ingest: world.api.core.ingest,
        directory: world.api.core.directory,
        dnsResolve: world.api.core.dnsResolve,
        metrics: world.api.core.metrics,
      });
      const { port } = (await edge.listen(0, '127.0.0.1')) as AddressInfo;
      world.onClose(async () => {
        for (const c of edge.server.connections) c.close();
        await new Promise<void>((ok) => edge.server.close(() => ok()));
      });
      return { edge, port };
    },
    swaks: (port, to, mail, o = {}) =>
      sendMail({
        port,
        from: o.from ?? world.worker.agent,
        to,
        data: typeof mail === 'string' ? mail : mail.data,
        helo: PARTNER_MTA.helo,
        extra: o.extra ?? [],
      }),
  };
}

/** A hand-driven SMTP session: every reply verbatim (for limits, pipelining and shutdown). */
export interface RawSession {
  readonly greeting: string;
  readonly socket: Socket;
  cmd(line: string): Promise<string>;
  reply(): Promise<string>;
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;
}

export async function rawSession(port: number, preamble?: Buffer): Promise<RawSession> {
  const socket = connect(port, '127.0.0.1');
  const closed = new Promise<void>((ok) => socket.once('close', () => ok()));
  socket.on('error', () => undefined);
  if (preamble) socket.write(preamble);
  const r = new LineReader(socket);
  const greeting = await Promise.race([r.reply(), closed.then(() => '(closed)')]);
  return {
    greeting,
    socket,
    closed,
    reply: () => Promise.race([r.reply(), closed.then(() => '(closed)')]),
    cmd(line) {
      socket.write(`${line}\r\n`);
      return Promise.race([r.reply(), closed.then(() => '(closed)')]);
    },
  };
}
