import pg from 'pg';
import { watchStuckQueries } from './stuck-queries.js';

// bigint (int8) counts come back as strings by default; ours stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** What a query function needs: the pool, or one client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/** Deadlines of every statement on a pool (the server's ADMP_PG_* settings; none for migrations and tools). */
export interface PoolTimeouts {
  /** PostgreSQL statement_timeout: the server cancels a statement running longer. */
  readonly statementMs: number;
  /** PostgreSQL lock_timeout: a statement waiting this long for a lock (a held table lock) fails. */
  readonly lockMs: number;
}

/**
 * How much longer than statement_timeout the client waits for an answer (its watchdog
 * fails the query between 1.5 and 2 s after the server should have cancelled it): a
 * frozen or unreachable server cancels nothing (its timers stop with it), so the client
 * gives up by itself.
 */
const CLIENT_MARGIN_MS = 2000;

const PLAN_CACHE_MODE = `SELECT set_config('plan_cache_mode',
  CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN 'force_custom_plan' ELSE 'force_generic_plan' END, false)`;

/**
 * A client that sets plan_cache_mode before the pool hands it out. Our prepared
 * statements (enqueue, claim, ack) take one generic plan per connection on a single
 * PostgreSQL: left to choose, PostgreSQL re-plans the claim on every call (its generic
 * cost estimate with an unknown LIMIT looks high), and planning costs about as much as
 * running it: backend CPU per cycle of 10, pull then ack, measured 1.14–1.30 → 0.77–0.93 ms.
 * Citus cannot build a distributed plan from a generic plan of a multi-shard or CTE
 * statement, and its fast path crashes on some generic plans of router UPDATEs, so on a
 * Citus coordinator every execution gets a custom plan (its router planner is cheap).
 */
class PlannedClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    // A client losing its connection emits 'error', and an 'error' nobody listens to ends
    // the process. pg-pool listens only while a client is idle in the pool: not while it
    // is lent out (a backend terminated between two statements of a transaction), nor
    // between pg's connect and the pool's, while plan_cache_mode is set (a connect timeout
    // destroys the socket then). So this listener stays for the client's life. The error
    // still reaches whoever waits: the query in flight fails with it, a transaction's next
    // statement with "Client has encountered a connection error", a storage fault (503 /
    // 451 4.3.0), and the pool discards the client.
    this.on('error', () => undefined);
    const connect = pg.Client.prototype.connect.bind(this) as () => Promise<unknown>;
    // pg-pool connects with a callback, other callers without: both forms are kept.
    this.connect = ((callback?: (err: Error | null, client?: pg.Client) => void) => {
      const ready = connect().then(async () => {
        await this.query(PLAN_CACHE_MODE);
        return this;
      });
      if (!callback) return ready;
      ready.then(
        () => callback(null, this),
        (err: Error) => callback(err),
      );
    }) as pg.Client['connect'];
  }
}

export function createPool(url: string, max: number, timeouts?: PoolTimeouts): pg.Pool {
  const options: string[] = [];
  if (timeouts) options.push(`-c statement_timeout=${timeouts.statementMs}`, `-c lock_timeout=${timeouts.lockMs}`);
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30000,
    // A connection whose peer vanished (host down, network cut) is noticed by TCP keepalive.
    keepAlive: true,
    options: options.join(' '),
    Client: PlannedClient,
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  if (timeouts) watchStuckQueries(pool, timeouts.statementMs + CLIENT_MARGIN_MS);
  return pool;
}

/**
 * When the server ends idle sessions itself (idle_session_timeout, PostgreSQL 14+), the
 * pool lets its idle clients go first, at half that time: a client handed out just as
 * the server ended its session would fail the statement it was lent for. pg-pool reads
 * `options.idleTimeoutMillis` each time a client goes idle. Read once, at start.
 */
export async function fitIdleTimeout(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ ms: string }>(
    "SELECT setting AS ms FROM pg_settings WHERE name = 'idle_session_timeout'",
  );
  const ms = Number(rows[0]?.ms ?? 0);
  if (ms > 0) pool.options.idleTimeoutMillis = Math.max(1, Math.min(pool.options.idleTimeoutMillis ?? ms, ms / 2));
}

/** Runs fn in a transaction on one client. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => {
      broken = e;
    });
    throw err;
  } finally {
    // A client whose ROLLBACK failed is in an unknown state: the pool discards it.
    client.release(broken);
  }
}
