// A TCP relay to PostgreSQL that can freeze: it then reads nothing more, a client's
// Terminate and FIN included, so it never closes its side (as a frozen server or a cut
// network would not). Connections made after freeze() are frozen from the start.
import { createServer, connect, type Socket } from 'node:net';

export interface FreezingRelay {
  /** The database URL through the relay. */
  url: string;
  freeze(): void;
  close(): void;
}

export async function freezingRelay(databaseUrl: string): Promise<FreezingRelay> {
  const target = new URL(databaseUrl);
  const pairs: [Socket, Socket][] = [];
  let frozen = false;
  const stop = ([client, server]: [Socket, Socket]) => {
    client.unpipe(server);
    server.unpipe(client);
    client.pause();
    server.pause();
  };
  const relay = createServer({ allowHalfOpen: true }, (client) => {
    const server = connect(Number(target.port), '127.0.0.1');
    const pair: [Socket, Socket] = [client, server];
    pairs.push(pair);
    if (frozen) return stop(pair);
    client.pipe(server).pipe(client);
  });
  await new Promise<void>((ok) => relay.listen(0, '127.0.0.1', ok));
  const url = new URL(databaseUrl);
  url.port = String((relay.address() as { port: number }).port);
  return {
    url: url.toString(),
    freeze() {
      frozen = true;
      pairs.forEach(stop);
    },
    close() {
      for (const s of pairs.flat()) s.destroy();
      relay.close();
    },
  };
}
