// The LMTP road under load: many loopback connections, each one long session
// (RFC 2033) that delivers message after message, MAIL FROM + RCPT TO + DATA sent
// together (PIPELINING, RFC 2920), as Postfix's LMTP client reuses its connections.
// One connection per message would mostly measure smtp-server's 100 ms greeting delay.
import { connect, type Socket } from 'node:net';
import { LineReader } from '../test/helpers/lmtp-client.js';
import { runLoops, type LoopResult } from './loops.js';
import { PARTNER_DOMAIN, RECIPIENT_ADDRESS, type MailSet } from './ingest-mail.js';

interface Session {
  readonly socket: Socket;
  readonly reader: LineReader;
}

async function open(port: number): Promise<Session> {
  // Postfix writes a message out of one stream buffer; small writes held back by
  // Nagle's algorithm until the peer's delayed ACK (40 ms) would measure TCP instead.
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  const reader = new LineReader(socket);
  await expect(reader, '220');
  socket.write('LHLO bench.client\r\n');
  await expect(reader, '250');
  return { socket, reader };
}

async function expect(reader: LineReader, code: string): Promise<void> {
  const line = await reader.reply();
  if (!line.startsWith(code)) throw new Error(`LMTP: expected ${code}, got "${line}"`);
}

/** RFC 5321 §4.5.2 dot-stuffing, and the end-of-data line. */
function dataOf(tail: Buffer): Buffer {
  const text = tail.toString('latin1').replace(/^\./gm, '..');
  return Buffer.from(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
}

export async function lmtpIngest(
  port: number,
  set: MailSet,
  opts: { connections: number; seconds: number },
): Promise<LoopResult> {
  const sessions = await Promise.all(Array.from({ length: opts.connections }, () => open(port)));
  const end = dataOf(set.tail);
  const envelope = `MAIL FROM:<worker@${PARTNER_DOMAIN}>\r\nRCPT TO:<${RECIPIENT_ADDRESS}>\r\nDATA\r\n`;
  let i = 0;
  try {
    return await runLoops(opts.connections, opts.seconds, async (w) => {
      const { socket, reader } = sessions[w]!;
      try {
        socket.write(envelope);
        await expect(reader, '250');
        await expect(reader, '250');
        await expect(reader, '354');
        socket.write(Buffer.concat([set.heads[i++ % set.heads.length]!, end]));
        await expect(reader, '250');
        return 1;
      } catch (err) {
        // Replies still on the way would answer the next message's commands: start over.
        socket.destroy();
        sessions[w] = await open(port);
        throw err;
      }
    });
  } finally {
    for (const s of sessions) s.socket.end('QUIT\r\n');
  }
}
