// Every Prometheus metric of the process, declared once, on an explicit Registry
// (never prom-client's global one: tests and several cores in one process each get
// their own). Counters end in _total, durations are _seconds histograms (Prometheus
// naming conventions), and every label takes values from a closed or bounded set:
// channel, road, outcome, error code, reason, source, HTTP route template, and the
// top-N agent ids of the inbox-depth refresh (src/ops/inbox-depth.ts).
// The README's metrics table (Operations) lists them; test/ops/metrics.test.ts checks
// that it, the alerts and the dashboard name only metrics declared here.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type pg from 'pg';

// Sub-millisecond commits up to the ingress budget (8 s default) and long-poll claims.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `pool`: the process's PostgreSQL pool, read for the pool gauges at each scrape (never stale). */
export function createMetrics(db?: { pool: pg.Pool; max: number }) {
  const registry = new Registry();
  const pool = db?.pool;
  const registers = [registry];
  const m = {
    registry,
    enqueued: new Counter({
      name: 'admp_enqueue_total',
      help: 'Messages stored by enqueue_message (duplicates excluded), by channel.',
      labelNames: ['channel'] as const,
      registers,
    }),
    duplicates: new Counter({
      name: 'admp_duplicate_total',
      help: 'Enqueues answered with an existing message (idempotency key or fingerprint), by channel.',
      labelNames: ['channel'] as const,
      registers,
    }),
    enqueueSeconds: new Histogram({
      name: 'admp_enqueue_seconds',
      help: 'Time from an enqueue call to its commit (batching wait included), by channel.',
      labelNames: ['channel'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    pullSeconds: new Histogram({
      name: 'admp_pull_seconds',
      help: 'Time of one claim statement of a pull (long-poll waiting excluded).',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    pulled: new Counter({ name: 'admp_pulled_total', help: 'Messages leased to consumers by pulls.', registers }),
    acks: new Counter({
      name: 'admp_ack_total',
      help: 'Ack answers by outcome (ok, not_found, forbidden, lease_conflict).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    ingestSeconds: new Histogram({
      name: 'admp_ingest_seconds',
      help: 'Time the ingress pipeline took for one mail, by road.',
      labelNames: ['road'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    ingress: new Counter({
      name: 'admp_ingress_total',
      help: 'Ingress answers per recipient, by road (rspamd, lmtp, smtp), outcome (stored, report, refused, tempfail) and error code ("none" when stored).',
      labelNames: ['road', 'outcome', 'code'] as const,
      registers,
    }),
    smtpConnections: new Counter({
      name: 'admp_smtp_connections_total',
      help: 'Connections the SMTP edge admitted (refused ones are in admp_smtp_refused_total).',
      registers,
    }),
    smtpOpen: new Gauge({
      name: 'admp_smtp_connections_open',
      help: 'Connections open on the SMTP edge.',
      registers,
    }),
    smtpTls: new Counter({
      name: 'admp_smtp_tls_total',
      help: 'STARTTLS handshakes completed on the SMTP edge.',
      registers,
    }),
    smtpRefused: new Counter({
      name: 'admp_smtp_refused_total',
      help: 'SMTP edge refusals before DATA, by reason (too_many_connections, rate_limited, message_rate_limited, tls_required, relay_denied, unknown_recipient, too_many_recipients, too_large, bad_proxy_header, report_refused); refusals of the mail itself are in admp_ingress_total{road="smtp"}.',
      labelNames: ['reason'] as const,
      registers,
    }),
    policyDenied: new Counter({
      name: 'admp_policy_denied_total',
      help: 'Ingress recipients refused by policy, by reason (denied_by_rule, unknown_sender, too_large, not_local, quota_exceeded).',
      labelNames: ['reason'] as const,
      registers,
    }),
    rateLimited: new Counter({
      name: 'admp_rate_limited_total',
      help: 'Requests and mail refused for a rate limit, by scope (api: per-agent API request limit), rule and window.',
      labelNames: ['scope', 'rule', 'window'] as const,
      registers,
    }),
    signatureFailed: new Counter({
      name: 'admp_signature_fail_total',
      help: 'Agent signature verifications that failed, by reason (signature_missing, signature_invalid, signature_expired, unknown_key, key_unavailable).',
      labelNames: ['reason'] as const,
      registers,
    }),
    dsn: new Counter({
      name: 'admp_dsn_total',
      help: 'Delivery status notifications received (RFC 3464), per reported recipient, by action (failed, delayed, delivered, relayed, expanded, other).',
      labelNames: ['action'] as const,
      registers,
    }),
    outbound: new Counter({
      name: 'admp_outbound_total',
      help: 'Outbound mail attempts by outcome (sent, deferred, failed).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    webhookAttempts: new Counter({
      name: 'admp_webhook_attempts_total',
      help: 'Webhook delivery attempts by outcome (delivered, retry, dead, disabled).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    webhookSeconds: new Histogram({
      name: 'admp_webhook_seconds',
      help: 'Time of one webhook POST, from the request to the answer (or the failure).',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    leaseExpired: new Counter({
      name: 'admp_lease_expired_total',
      help: 'Expired leases returned to the inbox by the sweeper.',
      registers,
    }),
    dead: new Counter({
      name: 'admp_dead_total',
      help: 'Messages moved to dead letters, by reason (max_attempts, ttl_expired).',
      labelNames: ['reason'] as const,
      registers,
    }),
    retentionRemoved: new Counter({
      name: 'admp_retention_removed_total',
      help: 'Rows deleted by retention (ADMP_RETENTION_DAYS), by kind (message, dedupe_key).',
      labelNames: ['kind'] as const,
      registers,
    }),
    inboxDepth: new Gauge({
      name: 'admp_inbox_depth',
      help: 'Deliverable plus leased messages of the deepest inboxes (top agents only), refreshed from the database on a schedule.',
      labelNames: ['agent'] as const,
      registers,
    }),
    queueMessages: new Gauge({
      name: 'admp_queue_messages',
      help: 'Messages waiting in the whole queue, by status (queued, delivered, leased), refreshed with admp_inbox_depth.',
      labelNames: ['status'] as const,
      registers,
    }),
    oldestDeliverableSeconds: new Gauge({
      name: 'admp_oldest_deliverable_seconds',
      help: 'Age of the oldest message waiting to be pulled (0 when none): agents not consuming shows here first.',
      registers,
    }),
    // The label is `task`, not `job`: Prometheus gives `job` to the scrape target.
    jobRuns: new Counter({
      name: 'admp_job_runs_total',
      help: 'Background job runs by task (sweep, retention, inbox_depth) and outcome (ok, error).',
      labelNames: ['task', 'outcome'] as const,
      registers,
    }),
    dbErrors: new Counter({
      name: 'admp_db_errors_total',
      help: 'Database connection faults seen: background jobs failing, idle pool clients dropped.',
      registers,
    }),
    dbUp: new Gauge({
      name: 'admp_db_up',
      help: '1 when the last background database round trip succeeded, else 0.',
      registers,
    }),
    // prom-client calls `collect` before each exposition.
    dbPoolTotal: new Gauge({
      name: 'admp_db_pool_connections',
      help: 'Open PostgreSQL connections of the pool.',
      registers,
      collect() {
        if (pool) this.set(pool.totalCount);
      },
    }),
    dbPoolIdle: new Gauge({
      name: 'admp_db_pool_idle',
      help: 'Idle PostgreSQL connections of the pool.',
      registers,
      collect() {
        if (pool) this.set(pool.idleCount);
      },
    }),
    dbPoolWaiting: new Gauge({
      name: 'admp_db_pool_waiting',
      help: 'Queries waiting for a free pool connection.',
      registers,
      collect() {
        if (pool) this.set(pool.waitingCount);
      },
    }),
    dbPoolMax: new Gauge({
      name: 'admp_db_pool_max',
      help: 'Configured maximum pool size (ADMP_PG_POOL_MAX).',
      registers,
      collect() {
        if (db) this.set(db.max);
      },
    }),
    keyLookups: new Counter({
      name: 'admp_key_cache_total',
      help: 'Partner key-set cache lookups by source (jwks, dns) and result (hit, miss).',
      labelNames: ['source', 'result'] as const,
      registers,
    }),
    keyFetchFailures: new Counter({
      name: 'admp_key_fetch_failures_total',
      help: 'Partner key-set fetches that failed (unreachable, timeout, bad answer), by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    httpRequests: new Counter({
      name: 'admp_http_requests_total',
      help: 'HTTP requests by method, route template and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpSeconds: new Histogram({
      name: 'admp_http_request_seconds',
      help: 'HTTP request duration by route template.',
      labelNames: ['route'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    wakeupListenerUp: new Gauge({
      name: 'admp_wakeup_listener_up',
      help: '1 while the LISTEN connection for long-poll wake-ups is up; 0 while pulls poll once a second instead.',
      registers,
    }),
    shuttingDown: new Gauge({
      name: 'admp_shutting_down',
      help: '1 while the process drains after SIGTERM/SIGINT.',
      registers,
    }),
  };
  // An idle client losing its connection (database restart, network cut).
  pool?.on('error', () => m.dbErrors.inc());
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Counts one enqueue answer: stored or duplicate, and its latency. */
export function observeEnqueue(m: Metrics, channel: string, duplicate: boolean, seconds?: number): void {
  (duplicate ? m.duplicates : m.enqueued).inc({ channel });
  if (seconds !== undefined) m.enqueueSeconds.observe({ channel }, seconds);
}

/** Seconds since a performance.now() mark. */
export const since = (startedMs: number): number => (performance.now() - startedMs) / 1000;
