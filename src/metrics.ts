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
  // One shape for every metric: name, help, the closed set of label names.
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  const histogram = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Histogram<L>({ name, help, labelNames, buckets: LATENCY_BUCKETS, registers });
  /** `read`: a value taken at each scrape (prom-client calls collect() before each exposition). */
  const gauge = <L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    read?: () => number | undefined,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        const v = read?.();
        if (v !== undefined) this.set(v);
      },
    });
  const m = {
    registry,
    enqueued: counter('admp_enqueue_total', 'Messages stored by enqueue_message (duplicates excluded), by channel.', [
      'channel',
    ]),
    duplicates: counter(
      'admp_duplicate_total',
      'Enqueues answered with an existing message (idempotency key or fingerprint), by channel.',
      ['channel'],
    ),
    enqueueSeconds: histogram(
      'admp_enqueue_seconds',
      'Time from an enqueue call to its commit (batching wait included), by channel.',
      ['channel'],
    ),
    pullSeconds: histogram('admp_pull_seconds', 'Time of one claim statement of a pull (long-poll waiting excluded).'),
    pulled: counter('admp_pulled_total', 'Messages leased to consumers by pulls.'),
    acks: counter('admp_ack_total', 'Ack answers by outcome (ok, not_found, forbidden, lease_conflict).', ['outcome']),
    ingestSeconds: histogram('admp_ingest_seconds', 'Time the ingress pipeline took for one mail, by road.', ['road']),
    ingress: counter(
      'admp_ingress_total',
      'Ingress answers per recipient, by road (rspamd, lmtp, smtp), outcome (stored, report, refused, tempfail) and error code ("none" when stored).',
      ['road', 'outcome', 'code'],
    ),
    smtpConnections: counter(
      'admp_smtp_connections_total',
      'Connections the SMTP edge admitted (refused ones are in admp_smtp_refused_total).',
    ),
    smtpOpen: gauge('admp_smtp_connections_open', 'Connections open on the SMTP edge.'),
    smtpTls: counter('admp_smtp_tls_total', 'STARTTLS handshakes completed on the SMTP edge.'),
    smtpRefused: counter(
      'admp_smtp_refused_total',
      'SMTP edge refusals before DATA, by reason (too_many_connections, rate_limited, message_rate_limited, tls_required, relay_denied, unknown_recipient, unknown_tenant, address_revoked, too_many_recipients, too_large, bad_proxy_header, report_refused); refusals of the mail itself are in admp_ingress_total{road="smtp"}.',
      ['reason'],
    ),
    policyDenied: counter(
      'admp_policy_denied_total',
      'Ingress recipients refused by policy, by reason (denied_by_rule, unknown_sender, too_large, not_local, quota_exceeded).',
      ['reason'],
    ),
    rateLimited: counter(
      'admp_rate_limited_total',
      'Requests and mail refused for a rate limit, by scope (api: per-agent API request limit; mail, http: a rate quota of the policy, on ingress mail or an HTTP send), rule and window.',
      ['scope', 'rule', 'window'],
    ),
    signatureFailed: counter(
      'admp_signature_fail_total',
      'Agent signature verifications that failed, by reason (signature_missing, signature_invalid, signature_expired, unknown_key, key_unavailable).',
      ['reason'],
    ),
    dsn: counter(
      'admp_dsn_total',
      'Delivery status notifications received (RFC 3464), per reported recipient, by action (failed, delayed, delivered, relayed, expanded, other).',
      ['action'],
    ),
    outbound: counter('admp_outbound_total', 'Outbound mail attempts by outcome (sent, deferred, failed).', [
      'outcome',
    ]),
    webhookAttempts: counter(
      'admp_webhook_attempts_total',
      'Webhook delivery attempts by outcome (delivered, retry, dead, disabled).',
      ['outcome'],
    ),
    webhookSeconds: histogram(
      'admp_webhook_seconds',
      'Time of one webhook POST, from the request to the answer (or the failure).',
    ),
    leaseExpired: counter('admp_lease_expired_total', 'Expired leases returned to the inbox by the sweeper.'),
    dead: counter('admp_dead_total', 'Messages moved to dead letters, by reason (max_attempts, ttl_expired).', [
      'reason',
    ]),
    retentionRemoved: counter(
      'admp_retention_removed_total',
      'Rows deleted by retention (ADMP_RETENTION_DAYS), by kind (message, dedupe_key).',
      ['kind'],
    ),
    inboxDepth: gauge(
      'admp_inbox_depth',
      'Deliverable plus leased messages of the deepest inboxes (top agents only), refreshed from the database on a schedule.',
      ['agent'],
    ),
    queueMessages: gauge(
      'admp_queue_messages',
      'Messages waiting in the whole queue, by status (queued, delivered, leased), refreshed with admp_inbox_depth.',
      ['status'],
    ),
    oldestDeliverableSeconds: gauge(
      'admp_oldest_deliverable_seconds',
      'Age of the oldest message waiting to be pulled (0 when none): agents not consuming shows here first.',
    ),
    // The label is `task`, not `job`: Prometheus gives `job` to the scrape target.
    jobRuns: counter(
      'admp_job_runs_total',
      'Background job runs by task (sweep, retention, inbox_depth) and outcome (ok, error).',
      ['task', 'outcome'],
    ),
    dbErrors: counter(
      'admp_db_errors_total',
      'Database connection faults seen: background jobs failing, idle pool clients dropped.',
    ),
    dbUp: gauge('admp_db_up', '1 when the last background database round trip succeeded, else 0.'),
    dbPoolTotal: gauge(
      'admp_db_pool_connections',
      'Open PostgreSQL connections of the pool.',
      [],
      () => pool?.totalCount,
    ),
    dbPoolIdle: gauge('admp_db_pool_idle', 'Idle PostgreSQL connections of the pool.', [], () => pool?.idleCount),
    dbPoolWaiting: gauge(
      'admp_db_pool_waiting',
      'Queries waiting for a free pool connection.',
      [],
      () => pool?.waitingCount,
    ),
    dbPoolMax: gauge('admp_db_pool_max', 'Configured maximum pool size (ADMP_PG_POOL_MAX).', [], () => db?.max),
    keyLookups: counter(
      'admp_key_cache_total',
      'Partner key-set cache lookups by source (jwks, dns) and result (hit, miss).',
      ['source', 'result'],
    ),
    keyFetchFailures: counter(
      'admp_key_fetch_failures_total',
      'Partner key-set fetches that failed (unreachable, timeout, bad answer), by source.',
      ['source'],
    ),
    httpRequests: counter('admp_http_requests_total', 'HTTP requests by method, route template and status code.', [
      'method',
      'route',
      'status',
    ]),
    httpSeconds: histogram('admp_http_request_seconds', 'HTTP request duration by route template.', ['route']),
    wakeupListenerUp: gauge(
      'admp_wakeup_listener_up',
      '1 while the LISTEN connection for long-poll wake-ups is up; 0 while pulls poll once a second instead.',
    ),
    shuttingDown: gauge('admp_shutting_down', '1 while the process drains after SIGTERM/SIGINT.'),
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
