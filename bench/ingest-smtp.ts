// The SMTP edge under load, as a partner's MTA drives it: long STARTTLS sessions
// (verified against the bench CA), each delivering message after message with MAIL
// FROM + RCPT TO + DATA sent together (PIPELINING, RFC 2920). Beside it: the same mail
// through a private Postfix relaying to our LMTP receiver (the plain Postfix → LMTP
// road), and the server's memory for a crowd of idle connections.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type pg from 'pg';
import { LineReader } from '../test/helpers/lmtp-client.js';
import { runLoops, type LoopResult } from './loops.js';
import { PARTNER_DOMAIN, RECIPIENT_ADDRESS, type MailSet } from './ingest-mail.js';

interface Session {
  readonly socket: Socket;
  readonly reader: LineReader;
}

/** The last line of the next complete reply on a socket not yet read by a LineReader. */
function rawReply(socket: Socket): Promise<string> {
  return new Promise((ok, bad) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const line = buf.split('\r\n').find((l) => /^\d{3} /.test(l));
      if (line === undefined) return;
      socket.removeListener('data', onData);
      socket.removeListener('error', bad);
      // No pause(): a paused socket ignores the next call's 'data' listener and the
      // session hangs; the server sends nothing between replies anyway.
      ok(line);
    };
    socket.on('data', onData);
    socket.once('error', bad);
  });
}

async function expect(reader: LineReader, code: string): Promise<void> {
  const line = await reader.reply();
  if (!line.startsWith(code)) throw new Error(`SMTP: expected ${code}, got "${line}"`);
}

/** Connects, EHLO, STARTTLS (the certificate verified for `servername` against `caFile`), EHLO again. */
async function openTls(port: number, servername: string, caFile: string): Promise<Session> {
  const raw = connect({ port, host: '127.0.0.1', noDelay: true });
  const step = async (line: string | undefined, code: string) => {
    if (line) raw.write(`${line}\r\n`);
    const reply = await rawReply(raw);
    if (!reply.startsWith(code)) throw new Error(`SMTP: expected ${code} to ${line ?? 'connect'}, got "${reply}"`);
  };
  await step(undefined, '220');
  await step('EHLO bench.partner.example', '250');
  await step('STARTTLS', '220');
  const socket = tlsConnect({ socket: raw, servername, ca: readFileSync(caFile) });
  await new Promise<void>((ok, bad) => {
    socket.once('secureConnect', ok);
    socket.once('error', bad);
  });
  const reader = new LineReader(socket);
  socket.write('EHLO bench.partner.example\r\n');
  await expect(reader, '250');
  return { socket, reader };
}

async function openPlain(port: number): Promise<Session> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  const reader = new LineReader(socket);
  await expect(reader, '220');
  socket.write('EHLO bench.partner.example\r\n');
  await expect(reader, '250');
  return { socket, reader };
}

/** RFC 5321 §4.5.2 dot-stuffing, and the end-of-data line. */
function dataOf(tail: Buffer): Buffer {
  const text = tail.toString('latin1').replace(/^\./gm, '..');
  return Buffer.from(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
}

const ENVELOPE = `MAIL FROM:<worker@${PARTNER_DOMAIN}>\r\nRCPT TO:<${RECIPIENT_ADDRESS}>\r\nDATA\r\n`;

/** Message after message on `connections` long sessions; an item is a message answered 250. */
async function sessions(
  open: () => Promise<Session>,
  set: MailSet,
  opts: { connections: number; seconds: number },
): Promise<LoopResult> {
  const all = await Promise.all(Array.from({ length: opts.connections }, open));
  const end = dataOf(set.tail);
  let i = 0;
  try {
    return await runLoops(opts.connections, opts.seconds, async (w) => {
      const { socket, reader } = all[w]!;
      try {
        socket.write(ENVELOPE);
        await expect(reader, '250');
        await expect(reader, '250');
        await expect(reader, '354');
        socket.write(Buffer.concat([set.heads[i++ % set.heads.length]!, end]));
        await expect(reader, '250');
        return 1;
      } catch (err) {
        // Replies still on the way would answer the next message's commands: start over.
        socket.destroy();
        all[w] = await open();
        throw err;
      }
    });
  } finally {
    for (const s of all) s.socket.end('QUIT\r\n');
  }
}

/** One message over one STARTTLS session: the reply to its DATA. */
export async function smtpEdgeSendOnce(
  port: number,
  tls: { servername: string; caFile: string },
  raw: Buffer,
): Promise<string> {
  const { socket, reader } = await openTls(port, tls.servername, tls.caFile);
  try {
    socket.write(ENVELOPE);
    for (const code of ['250', '250', '354']) await expect(reader, code);
    socket.write(dataOf(raw));
    return await reader.reply();
  } finally {
    socket.end('QUIT\r\n');
  }
}

export const smtpEdgeIngest = (
  port: number,
  tls: { servername: string; caFile: string },
  set: MailSet,
  opts: { connections: number; seconds: number },
): Promise<LoopResult> => sessions(() => openTls(port, tls.servername, tls.caFile), set, opts);

/**
 * The same mail submitted to a Postfix that relays it to our LMTP receiver. Postfix
 * answers once the mail is in its queue, so the rate is the mail stored in our database
 * from the first submission until the last accepted one is stored.
 */
export async function postfixLmtpIngest(
  postfixPort: number,
  pool: pg.Pool,
  set: MailSet,
  opts: { connections: number; seconds: number; drainSeconds: number },
): Promise<LoopResult & { accepted: number; stored: number; drainSeconds: number }> {
  const count = async () => (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM message')).rows[0]!.n;
  const before = await count();
  const started = performance.now();
  const sent = await sessions(() => openPlain(postfixPort), set, opts);
  const deadline = performance.now() + opts.drainSeconds * 1000;
  let stored = (await count()) - before;
  while (stored < sent.items && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    stored = (await count()) - before;
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    ...sent,
    perSec: stored / seconds,
    accepted: sent.items,
    stored,
    drainSeconds: seconds - sent.seconds,
  };
}

/** Resident memory (kB) of a process and its children (the cluster's workers). */
export function treeRssKb(root: number): number {
  let total = 0;
  const children = (pid: number): number[] => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const visit = (pid: number) => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      total += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      return;
    }
    for (const c of children(pid)) visit(c);
  };
  visit(root);
  return total;
}

/** Opens `n` plain connections that only read the greeting and then idle; RSS of the server before and with them. */
export async function idleConnectionsRss(
  port: number,
  serverPid: number,
  n: number,
): Promise<{ connections: number; beforeKb: number; afterKb: number }> {
  const beforeKb = treeRssKb(serverPid);
  const open: Socket[] = [];
  try {
    for (let i = 0; i < n; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, n - i) }, async () => {
          const socket = connect({ port, host: '127.0.0.1' });
          socket.on('error', () => undefined);
          const greeting = await rawReply(socket);
          if (!greeting.startsWith('220')) throw new Error(`idle connection ${i}: ${greeting}`);
          return socket;
        }),
      );
      open.push(...batch);
    }
    await new Promise((r) => setTimeout(r, 1000));
    return { connections: open.length, beforeKb, afterKb: treeRssKb(serverPid) };
  } finally {
    for (const s of open) s.destroy();
  }
}
