// LISTEN on one channel over a dedicated connection (a pooled one would be handed
// to other queries), reconnecting after a loss. Notifications carry wake-ups only:
// whoever listens must also look for work by itself after a reconnect.
import pg from 'pg';

export interface Listener {
  close(): Promise<void>;
}

export interface ListenOptions {
  readonly url: string;
  readonly channel: 'admp_inbox' | 'admp_outbound';
  readonly onNotify: (payload: string) => void;
  /** The connection was lost (or could not be made); a reconnect follows. */
  readonly onError: (err: Error) => void;
  readonly retryMs?: number;
}

/** Resolves once the first LISTEN is in place (or rejects when the first connect fails). */
export async function listen(o: ListenOptions): Promise<Listener> {
  let client: pg.Client | undefined;
  let closed = false;
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: o.url });
    c.on('notification', (n) => o.onNotify(n.payload ?? ''));
    c.on('error', (err) => {
      o.onError(err);
      client = undefined;
      if (!closed) setTimeout(() => void connect().catch(o.onError), o.retryMs ?? 1000).unref();
    });
    await c.connect();
    await c.query(`LISTEN ${o.channel}`);
    if (closed) await c.end();
    else client = c;
  };
  await connect();
  return {
    async close() {
      closed = true;
      await client?.end().catch(() => undefined);
    },
  };
}
