// One LISTEN connection that stays up: PostgreSQL notifications (NOTIFY) reach only a
// session that is connected and listening, so whoever relies on them (long polls, the
// outbound worker) must know when that is not the case. Exactly one connection at a
// time: a new one is opened only after the old one is gone, whatever mix of 'error'
// and 'end' events its loss produced (a backend ended by idle_session_timeout or
// pg_terminate_backend emits both), then after a growing pause while the database
// stays away. close() ends whatever state it meets (connected, paused, still connecting,
// a server that stopped answering) within about CLOSE_WAIT_MS: shutdown waits for it.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export interface ListenerEvents {
  onNotify(payload: string): void;
  /** Called on every change: up after LISTEN succeeded, down when the connection is lost (with why). */
  onState(up: boolean, err?: Error): void;
}

export interface Listener {
  /** True while the connection is up and listening. */
  readonly up: boolean;
  /** Settles once the first attempt to connect has ended, either way. */
  readonly settled: Promise<void>;
  close(): Promise<void>;
}

export interface Backoff {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** 100 ms, 200 ms, 400 ms … 2 s between attempts; a connection that lasted resets it. */
export const LISTEN_BACKOFF: Backoff = { firstMs: 100, maxMs: 2000 };

/**
 * How long close() lets the connection end politely (Terminate, then the server closes it)
 * before it cuts the socket: a server that stopped answering (frozen, or the network gone)
 * would otherwise hold a shutdown forever.
 */
const CLOSE_WAIT_MS = 1000;

export function listen(
  url: string,
  channel: 'admp_inbox' | 'admp_outbound',
  events: ListenerEvents,
  backoff = LISTEN_BACKOFF,
): Listener {
  let up = false;
  // What onState last said; undefined before the first attempt ended either way.
  let told: boolean | undefined;
  let closed = false;
  let current: pg.Client | undefined;
  const stop = new AbortController();
  let firstAttempt!: () => void;
  const settled = new Promise<void>((ok) => (firstAttempt = ok));

  /** One connection's life: resolves when it is lost (or rejects when it never came up). */
  async function session(): Promise<Error> {
    const client = new pg.Client({ connectionString: url, keepAlive: true, connectionTimeoutMillis: 5000 });
    current = client;
    const lost = new Promise<Error>((ok) => {
      client.on('error', (err) => ok(err));
      client.on('end', () => ok(new Error('connection ended')));
    });
    client.on('notification', (n) => events.onNotify(n.payload ?? ''));
    // The loss settles a connect that pg itself never would: close() ending a client whose
    // socket is still connecting sends Terminate before the startup packet, the server drops
    // that connection without a word, and pg, ending, takes the drop for the end it asked
    // for: it neither rejects connect() nor keeps its connect timeout.
    await Promise.race([client.connect(), lost.then((err) => Promise.reject(err))]);
    // This session is meant to sit idle: an idle_session_timeout (PostgreSQL 14+) set by
    // the admin for forgotten sessions would end it every few seconds.
    await client.query('SET idle_session_timeout = 0').catch(() => undefined);
    await client.query(`LISTEN ${channel}`);
    if (closed) return new Error('closed');
    up = told = true;
    events.onState(true);
    firstAttempt();
    return lost;
  }

  async function run(): Promise<void> {
    let delay = backoff.firstMs;
    while (!closed) {
      const started = Date.now();
      let why: Error;
      try {
        why = await session();
      } catch (err) {
        why = err as Error;
      }
      await current?.end().catch(() => undefined);
      current = undefined;
      if (closed) break;
      // A connection that lived a while was a healthy one: start the pauses over.
      if (Date.now() - started > backoff.maxMs) delay = backoff.firstMs;
      up = false;
      firstAttempt();
      if (told !== false) {
        told = false;
        events.onState(false, why);
      }
      await sleep(delay, undefined, { signal: stop.signal }).catch(() => undefined);
      delay = Math.min(backoff.maxMs, delay * 2);
    }
    up = false;
  }
  const running = run();

  return {
    get up() {
      return up;
    },
    settled,
    async close() {
      closed = true;
      stop.abort();
      const client = current;
      if (client) {
        const cut = setTimeout(() => client.connection.stream.destroy(), CLOSE_WAIT_MS);
        await client.end().catch(() => undefined);
        clearTimeout(cut);
      }
      await running;
    },
  };
}
