// Load for fault tests, sent the way real clients send: agents over HTTP retry with the
// same Idempotency-Key, MTAs over LMTP retry the same bytes, each on a temporary answer
// (503, 429, 451/452) or a broken connection, and stop on any other answer. What every
// send and mail finally got is counted, so a test can assert 0 permanent refusals, and
// the rows in the database then show 0 lost and 0 duplicated.
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { LineReader } from './lmtp-client.js';

export interface LoadTarget {
  /** The server's HTTP port and LMTP port (a restarted server listens on the same ones). */
  readonly httpPort: number;
  readonly lmtpPort: number;
  /** Bearer token of the sending agent. */
  readonly token: string;
  /** The recipient agent's address. */
  readonly to: string;
}

export interface LoadResult {
  /** Final answers that were neither success nor temporary, with what they were. */
  readonly permanent: string[];
  /** Temporary answers and broken connections that were retried. */
  readonly retried: number;
  /** Server errors (HTTP 500 / no reply code): a fault of ours that is not even temporary. */
  readonly serverErrors: string[];
}

export interface Load {
  /** Sends and mails finished so far. */
  done(): number;
  readonly finished: Promise<LoadResult>;
}

const TEMPORARY_HTTP = new Set([429, 503]);
const ATTEMPT_MS = 20_000;

/** Runs `count` jobs with at most `width` at once. */
async function pool(count: number, width: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await job(next++);
    }),
  );
}

/** One LMTP delivery of one recipient: its DATA reply, or a thrown error when the connection broke. */
async function lmtpOnce(port: number, from: string, to: string, data: Buffer): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  const broken = new Promise<never>((_, fail) => {
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('connection closed')));
    socket.setTimeout(ATTEMPT_MS, () => fail(new Error('timed out')));
  });
  broken.catch(() => undefined);
  const r = new LineReader(socket);
  const reply = () => Promise.race([r.reply(), broken]);
  const cmd = (line: string) => {
    socket.write(`${line}\r\n`);
    return reply();
  };
  try {
    const greeting = await reply();
    if (!greeting.startsWith('220')) return greeting;
    for (const line of ['LHLO load.test', `MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, 'DATA']) {
      const answer = await cmd(line);
      if (!/^[23]/.test(answer)) return answer;
    }
    const body = data.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    socket.write(Buffer.from(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1'));
    const answer = await reply();
    socket.write('QUIT\r\n');
    return answer;
  } finally {
    socket.destroy();
  }
}

/**
 * Starts `sends` HTTP sends (body `{"i": n}`, Idempotency-Key `load-n`) and delivers
 * `mails` over LMTP, retrying each until it is answered for good.
 */
export function startLoad(
  target: LoadTarget,
  o: { sends: number; mails: readonly Buffer[]; mailFrom: string; width?: number },
): Load {
  let done = 0;
  let retried = 0;
  const permanent: string[] = [];
  const serverErrors: string[] = [];
  const retry = async () => {
    retried++;
    await sleep(50 + Math.random() * 150);
  };

  const send = async (i: number) => {
    for (;;) {
      let status: number;
      let text: string;
      try {
        const r = await fetch(`http://127.0.0.1:${target.httpPort}/v1/messages`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${target.token}`,
            'content-type': 'application/json',
            'idempotency-key': `load-${i}`,
          },
          body: JSON.stringify({ to: target.to, type: 'load.test', body: { i } }),
          signal: AbortSignal.timeout(ATTEMPT_MS),
        });
        status = r.status;
        text = await r.text();
      } catch {
        await retry(); // refused, reset or cut off: the server was killed or is restarting
        continue;
      }
      if (status === 200 || status === 201) break;
      if (TEMPORARY_HTTP.has(status)) {
        await retry();
        continue;
      }
      (status >= 500 ? serverErrors : permanent).push(`send ${i}: ${status} ${text}`);
      break;
    }
    done++;
  };

  const mail = async (j: number) => {
    for (;;) {
      let answer: string;
      try {
        answer = await lmtpOnce(target.lmtpPort, o.mailFrom, target.to, o.mails[j]!);
      } catch {
        await retry();
        continue;
      }
      if (answer.startsWith('250')) break;
      // 421 (shutting down), 451, 452: the MTA keeps the mail and retries.
      if (/^4\d\d /.test(answer)) {
        await retry();
        continue;
      }
      (/^5\d\d /.test(answer) ? permanent : serverErrors).push(`mail ${j}: ${answer}`);
      break;
    }
    done++;
  };

  const width = o.width ?? 12;
  const finished = Promise.all([pool(o.sends, width, send), pool(o.mails.length, Math.ceil(width / 2), mail)]).then(
    () => ({ permanent, retried, serverErrors }),
  );
  return { done: () => done, finished };
}

/**
 * Every load item stored exactly once for the recipient: the sends by their body's `i`,
 * the mails by their body's `m`. Returns what is missing and what is doubled.
 */
export async function storedOnce(
  db: pg.Pool | pg.Client,
  to: string,
  sends: number,
  mails: number,
): Promise<{ missing: string[]; doubled: string[]; rows: number }> {
  const { rows } = await db.query<{ k: string; n: number }>(
    `SELECT coalesce('i' || (body->>'i'), 'm' || (body->>'m')) AS k, count(*)::int AS n
       FROM message WHERE to_agent_id = $1 GROUP BY 1`,
    [to],
  );
  const seen = new Map(rows.map((r) => [r.k, r.n]));
  const expected = [
    ...Array.from({ length: sends }, (_, i) => `i${i}`),
    ...Array.from({ length: mails }, (_, j) => `m${j}`),
  ];
  return {
    missing: expected.filter((k) => !seen.has(k)),
    doubled: [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k}×${n}`),
    rows: rows.reduce((a, r) => a + r.n, 0),
  };
}
