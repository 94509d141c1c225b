// A minimal LMTP client (RFC 2033) that returns every reply line verbatim, so
// tests can assert exact codes, enhanced codes and per-recipient order.
import { connect, type Socket } from 'node:net';

export interface LmtpTranscript {
  greeting: string;
  rcpt: string[];
  /** One reply per accepted recipient, in RCPT order (empty when no RCPT was accepted). */
  data: string[];
}

export class LineReader {
  private buf = '';
  private waiters: ((line: string) => void)[] = [];
  private lines: string[] = [];
  constructor(socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
  }
  next(): Promise<string> {
    const l = this.lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((ok) => this.waiters.push(ok));
  }
  /** A whole (possibly multi-line) reply: lines until one with a space after the code. */
  async reply(): Promise<string> {
    let line = await this.next();
    while (/^\d{3}-/.test(line)) line = await this.next();
    return line;
  }
}

export async function lmtpSend(
  port: number,
  o: { from: string; to: readonly string[]; data: Buffer | string; host?: string },
): Promise<LmtpTranscript> {
  const socket = connect(port, o.host ?? '127.0.0.1');
  const r = new LineReader(socket);
  const cmd = async (line: string) => {
    socket.write(`${line}\r\n`);
    return r.reply();
  };
  try {
    const greeting = await r.reply();
    if (!greeting.startsWith('220')) return { greeting, rcpt: [], data: [] };
    await cmd('LHLO test.client');
    await cmd(`MAIL FROM:<${o.from}>`);
    const rcpt: string[] = [];
    for (const t of o.to) rcpt.push(await cmd(`RCPT TO:<${t}>`));
    const accepted = rcpt.filter((l) => l.startsWith('250')).length;
    if (accepted === 0) return { greeting, rcpt, data: [] };
    await cmd('DATA');
    const body = Buffer.from(o.data).toString('latin1').replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    socket.write(Buffer.from(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1'));
    const data: string[] = [];
    for (let i = 0; i < accepted; i++) data.push(await r.reply());
    socket.write('QUIT\r\n');
    return { greeting, rcpt, data };
  } finally {
    socket.end();
  }
}
