// One configuration object for the whole process: read from the environment and
// an optional YAML file, validated once at start, frozen, then passed down.
// Every setting is declared once in SETTINGS below; the README's configuration
// table is printed from the same list (`admp config --markdown`).
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './errors.js';
import { parseAllowList } from './net/guarded-fetch.js';
import { isDomainEntry } from './core/domains.js';

type Kind = 'string' | 'int' | 'bool' | 'list' | 'listen' | 'optional-listen' | 'enum';

interface Setting<K extends Kind = Kind, V extends string = string> {
  /** Environment variable; the YAML key is the same name lower-cased without the ADMP_ prefix. */
  env: string;
  kind: K;
  default: string;
  doc: string;
  min?: number;
  max?: number;
  values?: readonly V[];
}

const s = <K extends Kind, V extends string = string>(x: Setting<K, V>): Setting<K, V> => x;

export const SETTINGS = {
  databaseUrl: s({
    env: 'DATABASE_URL',
    kind: 'string',
    default: '',
    doc: 'PostgreSQL URL. Empty: start an embedded PostgreSQL with data under `<data_dir>/pg`.',
  }),
  dataDir: s({
    env: 'ADMP_DATA_DIR',
    kind: 'string',
    default: './var',
    doc: 'Directory for the embedded database and local state.',
  }),
  embeddedPgPort: s({
    env: 'ADMP_EMBEDDED_PG_PORT',
    kind: 'int',
    default: '54329',
    min: 0,
    max: 65535,
    doc: 'Port of the embedded PostgreSQL (0 picks a free port).',
  }),
  workers: s({
    env: 'ADMP_WORKERS',
    kind: 'int',
    default: '1',
    min: 1,
    max: 64,
    doc: 'Server processes sharing the listeners (node:cluster); one per core uses all cores for ingest.',
  }),
  migrateOnStart: s({
    env: 'ADMP_MIGRATE_ON_START',
    kind: 'bool',
    default: 'true',
    doc: 'Apply pending migrations when `admp serve` starts.',
  }),
  pgPoolMax: s({
    env: 'ADMP_PG_POOL_MAX',
    kind: 'int',
    default: '16',
    min: 1,
    max: 500,
    doc: 'Maximum PostgreSQL connections per process.',
  }),
  pgStatementTimeoutMs: s({
    env: 'ADMP_PG_STATEMENT_TIMEOUT_MS',
    kind: 'int',
    default: '5000',
    min: 100,
    max: 600000,
    doc: "PostgreSQL `statement_timeout` of the server's connections: a statement running longer is cancelled and the caller gets 503 / 451 4.3.0. The client gives up by itself 1.5–2 s after that when the database does not answer at all (frozen, unreachable). Migrations run without it.",
  }),
  pgLockTimeoutMs: s({
    env: 'ADMP_PG_LOCK_TIMEOUT_MS',
    kind: 'int',
    default: '2000',
    min: 100,
    max: 600000,
    doc: 'PostgreSQL `lock_timeout`: a statement waiting this long for a lock (someone holds a table lock) fails with 503 / 451 4.3.0 instead of hanging.',
  }),
  requestBudgetMs: s({
    env: 'ADMP_REQUEST_BUDGET_MS',
    kind: 'int',
    default: '8000',
    min: 100,
    max: 600000,
    doc: "Time an agent API request or an LMTP transaction may take before it is answered 503 `timeout` / 451 4.3.0. A pull's `wait` is added to it (a long poll's own wait is not a stall).",
  }),
  dbStartWaitSec: s({
    env: 'ADMP_DB_START_WAIT_SEC',
    kind: 'int',
    default: '300',
    min: 0,
    max: 86400,
    doc: '`admp serve` retries a database it cannot reach at start (containers start in any order) with backoff for this long, logging each attempt, then exits 1.',
  }),
  httpListen: s({
    env: 'ADMP_HTTP_LISTEN',
    kind: 'listen',
    default: '127.0.0.1:8080',
    doc: 'Address:port of the agent HTTP API and the Rspamd ingress endpoint.',
  }),
  httpTlsCert: s({
    env: 'ADMP_HTTP_TLS_CERT',
    kind: 'string',
    default: '',
    doc: 'PEM certificate chain for the agent API. Set with ADMP_HTTP_TLS_KEY to serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN); both files are re-read when they change, without a restart. Empty: plain HTTP.',
  }),
  httpTlsKey: s({
    env: 'ADMP_HTTP_TLS_KEY',
    kind: 'string',
    default: '',
    doc: 'PEM private key of ADMP_HTTP_TLS_CERT.',
  }),
  httpTlsClientCa: s({
    env: 'ADMP_HTTP_TLS_CLIENT_CA',
    kind: 'string',
    default: '',
    doc: 'PEM CA certificates for client certificates (mutual TLS). The API then asks every client for a certificate; an agent bound to one (`admp agent cert add`) must present it besides its credential. Needs ADMP_HTTP_TLS_CERT.',
  }),
  httpTlsReloadMs: s({
    env: 'ADMP_HTTP_TLS_RELOAD_MS',
    kind: 'int',
    default: '5000',
    min: 100,
    max: 3600000,
    doc: 'How often the TLS certificate, key and client CA files are checked for changes.',
  }),
  apiRateLimit: s({
    env: 'ADMP_API_RATE_LIMIT',
    kind: 'int',
    default: '6000',
    min: 0,
    max: 1000000000,
    doc: 'Agent API requests one agent may make per ADMP_API_RATE_WINDOW_SEC on one instance, every route counted (pulls and long polls too); over it the answer is 429 with `Retry-After`. 0: no limit.',
  }),
  apiRateWindowSec: s({
    env: 'ADMP_API_RATE_WINDOW_SEC',
    kind: 'int',
    default: '10',
    min: 1,
    max: 86400,
    doc: 'Window of ADMP_API_RATE_LIMIT, in seconds.',
  }),
  metricsListen: s({
    env: 'ADMP_METRICS_LISTEN',
    kind: 'optional-listen',
    default: '127.0.0.1:9464',
    doc: 'Address:port of the listener that serves `/metrics` and nothing else (loopback by default: the metrics name agents and correspondents). Empty: no such listener.',
  }),
  metricsToken: s({
    env: 'ADMP_METRICS_TOKEN',
    kind: 'string',
    default: '',
    doc: 'When set, `/metrics` asks for `Authorization: Bearer <token>`, and is then also served on the API listener. Empty: the API listener does not serve `/metrics`.',
  }),
  metricsRefreshMs: s({
    env: 'ADMP_METRICS_REFRESH_MS',
    kind: 'int',
    default: '15000',
    min: 1000,
    max: 3600000,
    doc: 'How often the queue gauges (`admp_inbox_depth` of the deepest inboxes, `admp_queue_messages`) are read from the database.',
  }),
  logLevel: s({
    env: 'ADMP_LOG_LEVEL',
    kind: 'enum',
    default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    doc: 'pino log level.',
  }),
  domains: s({
    env: 'ADMP_DOMAINS',
    kind: 'list',
    default: 'agents.localhost',
    doc: 'Our agents domains (comma separated). The first is the default for `admp agent add` and may not be a wildcard. A wildcard (`*.inbound.example.com`) holds tenants: each `admp tenant add acme` is a subdomain (`acme.inbound.example.com`) with agents of its own.',
  }),
  maxBodyBytes: s({
    env: 'ADMP_MAX_BODY_BYTES',
    kind: 'int',
    default: '262144',
    min: 1024,
    max: 104857600,
    doc: 'Largest accepted JSON message body (HTTP request body or mail envelope part), in bytes.',
  }),
  maxMailBytes: s({
    env: 'ADMP_MAX_MAIL_BYTES',
    kind: 'int',
    default: '10485760',
    min: 1024,
    max: 104857600,
    doc: 'Largest accepted raw mail on the ingress roads, in bytes.',
  }),
  maxAttempts: s({
    env: 'ADMP_MAX_ATTEMPTS',
    kind: 'int',
    default: '5',
    min: 1,
    max: 1000,
    doc: 'Leases a message may take before it goes `dead`.',
  }),
  defaultTtlSec: s({
    env: 'ADMP_DEFAULT_TTL_SEC',
    kind: 'int',
    default: '604800',
    min: 1,
    max: 31536000,
    doc: 'Message time to live when the sender gives none.',
  }),
  defaultVisibilitySec: s({
    env: 'ADMP_DEFAULT_VISIBILITY_SEC',
    kind: 'int',
    default: '30',
    min: 1,
    max: 43200,
    doc: 'Lease length when a pull gives no `visibility_timeout`.',
  }),
  maxVisibilitySec: s({
    env: 'ADMP_MAX_VISIBILITY_SEC',
    kind: 'int',
    default: '43200',
    min: 1,
    max: 43200,
    doc: 'Longest lease or extension (12 h, as SQS).',
  }),
  reclaimIntervalMs: s({
    env: 'ADMP_RECLAIM_INTERVAL_MS',
    kind: 'int',
    default: '1000',
    min: 50,
    max: 600000,
    doc: 'How often expired leases and TTLs are swept.',
  }),
  retentionDays: s({
    env: 'ADMP_RETENTION_DAYS',
    kind: 'int',
    default: '30',
    min: 0,
    max: 36500,
    doc: 'Acked messages are deleted this many days after their ack, dead letters this many days after their TTL ran out, outbound mail (`sent`, `failed`) this many days after its last attempt but not before its bounce tag expired, with their dedupe keys. 0 keeps everything.',
  }),
  retentionBatch: s({
    env: 'ADMP_RETENTION_BATCH',
    kind: 'int',
    default: '500',
    min: 1,
    max: 100000,
    doc: 'Messages deleted per retention statement (one short transaction each; claims are never blocked).',
  }),
  authCacheSec: s({
    env: 'ADMP_AUTH_CACHE_SEC',
    kind: 'int',
    default: '30',
    min: 0,
    max: 3600,
    doc: 'How long a verified bearer token is cached in memory (revocation takes effect within this time).',
  }),
  clockSkewSec: s({
    env: 'ADMP_CLOCK_SKEW_SEC',
    kind: 'int',
    default: '300',
    min: 1,
    max: 3600,
    doc: 'Accepted clock difference for HMAC requests, JWTs and agent signatures (±).',
  }),
  signatureValiditySec: s({
    env: 'ADMP_SIGNATURE_VALIDITY_SEC',
    kind: 'int',
    default: '432000',
    min: 0,
    max: 2592000,
    doc: "How long after its timestamp an agent signature without `X-Agent-Expires` is still accepted when the mail first reaches our MTA (docs/protocol.md §6.3). Mail is store-and-forward: the default, 5 days, is Postfix's `maximal_queue_lifetime`, so a mail an MTA retries is never refused as stale. Replays inside it are duplicates.",
  }),
  signatureMaxValiditySec: s({
    env: 'ADMP_SIGNATURE_MAX_VALIDITY_SEC',
    kind: 'int',
    default: '604800',
    min: 0,
    max: 2592000,
    doc: 'The longest validity a sender may choose with `X-Agent-Expires` (docs/protocol.md §6.3): a later expiry counts as this long after the timestamp. At least ADMP_SIGNATURE_VALIDITY_SEC.',
  }),
  ingressToken: s({
    env: 'ADMP_INGRESS_TOKEN',
    kind: 'string',
    default: '',
    doc: 'Bearer secret the Rspamd plugin presents on `POST /ingress/rspamd`. Empty: the endpoint refuses every call.',
  }),
  ingestBatchWaitMs: s({
    env: 'ADMP_INGEST_BATCH_WAIT_MS',
    kind: 'int',
    default: '3',
    min: 0,
    max: 100,
    doc: 'How long stored mail (both ingress roads) may wait for more mail to share its commit (at most 32 per commit). Mail is throughput-bound, so fewer, larger commits take more mail per second; 0 stores each message as soon as a database connection is free.',
  }),
  ingressBudgetMs: s({
    env: 'ADMP_INGRESS_BUDGET_MS',
    kind: 'int',
    default: '8000',
    min: 100,
    max: 60000,
    doc: 'Time the ingress pipeline may take before it answers a temporary failure (keep under the plugin timeout).',
  }),
  lmtpListen: s({
    env: 'ADMP_LMTP_LISTEN',
    kind: 'optional-listen',
    default: '127.0.0.1:2526',
    doc: 'Address:port of the LMTP receiver. Empty: LMTP off.',
  }),
  lmtpAllow: s({
    env: 'ADMP_LMTP_ALLOW',
    kind: 'list',
    default: '127.0.0.0/8,::1/128',
    doc: 'CIDRs allowed to connect to the LMTP receiver.',
  }),
  smtpListen: s({
    env: 'ADMP_SMTP_LISTEN',
    kind: 'optional-listen',
    default: '',
    doc: 'Address:port of the standalone SMTP edge (port 25 on a bare server, README "ADMP without Mailcow"). Empty: the edge is off.',
  }),
  smtpHostname: s({
    env: 'ADMP_SMTP_HOSTNAME',
    kind: 'string',
    default: '',
    doc: "The edge's host name: in its 220 banner, its Received header and as the authserv-id of its Authentication-Results. Empty: the machine's host name.",
  }),
  smtpTlsCert: s({
    env: 'ADMP_SMTP_TLS_CERT',
    kind: 'string',
    default: '',
    doc: 'PEM certificate chain for STARTTLS on the edge (re-read when the file changes, so a renewal needs no restart). Empty, with the key empty: no STARTTLS.',
  }),
  smtpTlsKey: s({
    env: 'ADMP_SMTP_TLS_KEY',
    kind: 'string',
    default: '',
    doc: 'PEM private key of ADMP_SMTP_TLS_CERT.',
  }),
  smtpRequireTls: s({
    env: 'ADMP_SMTP_REQUIRE_TLS',
    kind: 'bool',
    default: 'false',
    doc: 'Refuse MAIL FROM (530 5.7.0) until the client has issued STARTTLS.',
  }),
  smtpMaxConnections: s({
    env: 'ADMP_SMTP_MAX_CONNECTIONS',
    kind: 'int',
    default: '1000',
    min: 1,
    max: 100000,
    doc: 'Concurrent connections the edge accepts in all; the next one gets 421 4.7.0.',
  }),
  smtpMaxConnectionsPerIp: s({
    env: 'ADMP_SMTP_MAX_CONNECTIONS_PER_IP',
    kind: 'int',
    default: '20',
    min: 1,
    max: 100000,
    doc: 'Concurrent connections from one client address (IPv6: one /64); the next one gets 421 4.7.0.',
  }),
  smtpRateConnections: s({
    env: 'ADMP_SMTP_RATE_CONNECTIONS',
    kind: 'int',
    default: '120',
    min: 1,
    max: 10000000,
    doc: 'New connections one client address may open per ADMP_SMTP_RATE_WINDOW_SEC; beyond it: 421 4.7.0 until the window passes.',
  }),
  smtpRateMessages: s({
    env: 'ADMP_SMTP_RATE_MESSAGES',
    kind: 'int',
    default: '600',
    min: 1,
    max: 10000000,
    doc: 'Messages (MAIL FROM) one client address may start per ADMP_SMTP_RATE_WINDOW_SEC; beyond it: 451 4.7.0 until the window passes.',
  }),
  smtpRateWindowSec: s({
    env: 'ADMP_SMTP_RATE_WINDOW_SEC',
    kind: 'int',
    default: '60',
    min: 1,
    max: 86400,
    doc: "Window of the edge's per-address rate limits (kept in memory, per process).",
  }),
  smtpTimeoutMs: s({
    env: 'ADMP_SMTP_TIMEOUT_MS',
    kind: 'int',
    default: '60000',
    min: 1000,
    max: 3600000,
    doc: 'How long the edge waits for the next command or data from a client (and for a TLS handshake or PROXY header) before closing it.',
  }),
  smtpProxy: s({
    env: 'ADMP_SMTP_PROXY',
    kind: 'list',
    default: '',
    doc: 'CIDRs of load balancers that open edge connections with a PROXY protocol header (v1 or v2); the address it carries is the client for limits, SPF and logs. Empty: no PROXY header is read.',
  }),
  mtaHostname: s({
    env: 'ADMP_MTA_HOSTNAME',
    kind: 'string',
    default: '',
    doc: 'authserv-id of our own MTA; on the LMTP road only the topmost Authentication-Results with this id is trusted.',
  }),
  dkimMode: s({
    env: 'ADMP_DKIM_MODE',
    kind: 'enum',
    default: 'trust',
    values: ['trust', 'verify'],
    doc: '`trust` the MTA/Rspamd DKIM verdict, or `verify` DKIM again with mailauth through ADMP_DNS_SERVERS.',
  }),
  dnsServers: s({
    env: 'ADMP_DNS_SERVERS',
    kind: 'list',
    default: '',
    doc: 'DNS servers (host or host:port) for DKIM re-verification and `_agentkeys` TXT lookups. Empty: the system resolver.',
  }),
  dnsTimeoutMs: s({
    env: 'ADMP_DNS_TIMEOUT_MS',
    kind: 'int',
    default: '2000',
    min: 100,
    max: 30000,
    doc: 'Timeout of one DNS query.',
  }),
  keyFetchTimeoutMs: s({
    env: 'ADMP_KEY_FETCH_TIMEOUT_MS',
    kind: 'int',
    default: '3000',
    min: 100,
    max: 30000,
    doc: 'Timeout for fetching a partner JWKS.',
  }),
  keyCacheSec: s({
    env: 'ADMP_KEY_CACHE_SEC',
    kind: 'int',
    default: '300',
    min: 0,
    max: 86400,
    doc: 'How long discovered partner keys (JWKS, DNS) are cached.',
  }),
  jwksScheme: s({
    env: 'ADMP_JWKS_SCHEME',
    kind: 'enum',
    default: 'https',
    values: ['https', 'http'],
    doc: 'Scheme for `/.well-known/agent-keys.json` of partners (`http` only for tests and closed networks).',
  }),
  jwksPort: s({
    env: 'ADMP_JWKS_PORT',
    kind: 'int',
    default: '0',
    min: 0,
    max: 65535,
    doc: 'Port for partner JWKS URLs (0: the scheme default).',
  }),
  fetchAllow: s({
    env: 'ADMP_FETCH_ALLOW',
    kind: 'list',
    default: '',
    doc: 'Addresses or CIDRs that outbound fetches to sender-chosen hosts (partner JWKS, webhooks) may connect to although they are loopback, private, link-local, unique-local, multicast or reserved (refused by default, checked on the address actually connected to). Empty: none.',
  }),
  policyFile: s({
    env: 'ADMP_POLICY_FILE',
    kind: 'string',
    default: '',
    doc: 'YAML file of ingress policy rules (docs/policy.md).',
  }),
  relayUrl: s({
    env: 'ADMP_RELAY_URL',
    kind: 'string',
    default: '',
    doc: 'SMTP relay for mail to other organisations (docs/federation.md): `smtp://host:port` (STARTTLS when offered) or `smtps://user:pass@host:465`. Empty: the outbound worker is off and remote messages stay `queued`.',
  }),
  relayTimeoutMs: s({
    env: 'ADMP_RELAY_TIMEOUT_MS',
    kind: 'int',
    default: '30000',
    min: 1000,
    max: 600000,
    doc: 'Timeout of one submission to the relay (connect, each command, the data).',
  }),
  outboundConcurrency: s({
    env: 'ADMP_OUTBOUND_CONCURRENCY',
    kind: 'int',
    default: '4',
    min: 1,
    max: 100,
    doc: 'Submissions one instance runs at once.',
  }),
  outboundBackoffMs: s({
    env: 'ADMP_OUTBOUND_BACKOFF_MS',
    kind: 'int',
    default: '30000',
    min: 10,
    max: 3600000,
    doc: 'Delay before the first retry after a temporary relay answer; it doubles per attempt, with jitter, up to one hour.',
  }),
  outboundDeadlineSec: s({
    env: 'ADMP_OUTBOUND_DEADLINE_SEC',
    kind: 'int',
    default: '172800',
    min: 1,
    max: 31536000,
    doc: 'How long temporary relay failures are retried before the message is `failed` (reason `timeout`).',
  }),
  webhooks: s({
    env: 'ADMP_WEBHOOKS',
    kind: 'bool',
    default: 'true',
    doc: "Run the push worker, which delivers the messages of agents with a webhook endpoint (README, Connect an agent). Off: registered endpoints wait and agents' messages stay for pulls.",
  }),
  webhookTimeoutMs: s({
    env: 'ADMP_WEBHOOK_TIMEOUT_MS',
    kind: 'int',
    default: '10000',
    min: 100,
    max: 120000,
    doc: 'Deadline of one webhook POST (connect, request, answer); past it the attempt failed and is retried.',
  }),
  webhookConcurrency: s({
    env: 'ADMP_WEBHOOK_CONCURRENCY',
    kind: 'int',
    default: '16',
    min: 1,
    max: 256,
    doc: 'Webhook requests one instance keeps in flight per endpoint.',
  }),
  webhookBackoffMs: s({
    env: 'ADMP_WEBHOOK_BACKOFF_MS',
    kind: 'int',
    default: '5000',
    min: 10,
    max: 3600000,
    doc: 'Delay before the first retry of a failed webhook attempt; it doubles per attempt, with jitter, up to one hour. Retries end at ADMP_MAX_ATTEMPTS or the TTL (then `dead`).',
  }),
  keysDir: s({
    env: 'ADMP_KEYS_DIR',
    kind: 'string',
    default: '',
    doc: "Directory of agents' private keys `<agent>.<kid>.pem` (`admp key create` writes them; the outbound worker signs with them). Empty: `<data_dir>/keys`.",
  }),
  shutdownGraceMs: s({
    env: 'ADMP_SHUTDOWN_GRACE_MS',
    kind: 'int',
    default: '10000',
    min: 0,
    max: 600000,
    doc: 'Time in-flight requests and LMTP transactions get after SIGTERM.',
  }),
  adminUrl: s({
    env: 'ADMP_URL',
    kind: 'string',
    default: '',
    doc: 'Base URL of a running `admp serve` (e.g. `https://admp.example.org`): the operator commands (`agent`, `token rotate`, `policy`, `messages`, `dead`) then go through its admin API with ADMP_ADMIN_TOKEN instead of opening the database. Empty: they open the database.',
  }),
  adminToken: s({
    env: 'ADMP_ADMIN_TOKEN',
    kind: 'string',
    default: '',
    doc: 'Admin token (`admp admin token create`) the CLI presents to ADMP_URL.',
  }),
} as const;

type SettingsSpec = typeof SETTINGS;
type ValueOf<S> =
  S extends Setting<'int'>
    ? number
    : S extends Setting<'bool'>
      ? boolean
      : S extends Setting<'list'>
        ? readonly string[]
        : S extends Setting<'listen'>
          ? Listen
          : S extends Setting<'optional-listen'>
            ? Listen | undefined
            : S extends Setting<'enum', infer V>
              ? V
              : string;

export interface Listen {
  readonly host: string;
  readonly port: number;
}
export type Config = { readonly [K in keyof SettingsSpec]: ValueOf<SettingsSpec[K]> };

export const yamlKey = (env: string): string => env.replace(/^ADMP_/, '').toLowerCase();

/** Parses `host:port` or `[v6]:port` (also the doctor's --smtp). */
export function parseListen(value: string, key: string): Listen {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(key, `expected host:port, got "${value}"`);
  return Object.freeze({ host: m[1] ?? m[2] ?? '', port });
}

function convert(key: string, spec: Setting, raw: string): unknown {
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(key, `expected an integer, got "${raw}"`);
      const n = Number(raw);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(key, `must be between ${spec.min} and ${spec.max}, got ${n}`);
      }
      return n;
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(key, `expected true or false, got "${raw}"`);
    }
    case 'list':
      return Object.freeze(
        raw
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      );
    case 'listen':
      return parseListen(raw, key);
    case 'optional-listen':
      return raw.trim() === '' ? undefined : parseListen(raw, key);
    case 'enum':
      if (!spec.values?.includes(raw))
        throw new ConfigError(key, `must be one of ${spec.values?.join(', ')}, got "${raw}"`);
      return raw;
  }
}

function readYaml(path: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('ADMP_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
  }
  if (doc == null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError('ADMP_CONFIG', `${path} must hold a mapping`);
  return doc as Record<string, unknown>;
}

/**
 * Builds the frozen config. Precedence: environment, then the YAML file named by
 * ADMP_CONFIG, then defaults. Unknown YAML keys are errors, so typos do not pass silently.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof SettingsSpec, string>> = {},
): Config {
  const file = env.ADMP_CONFIG ? readYaml(env.ADMP_CONFIG) : {};
  const known = new Set(Object.values(SETTINGS).map((x) => yamlKey(x.env)));
  for (const k of Object.keys(file)) {
    if (!known.has(k)) throw new ConfigError(k, `unknown key in ${env.ADMP_CONFIG}`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [keyof SettingsSpec, Setting][]) {
    const fromFile = file[yamlKey(spec.env)];
    const raw =
      overrides[name] ??
      env[spec.env] ??
      (fromFile === undefined ? undefined : Array.isArray(fromFile) ? fromFile.join(',') : String(fromFile)) ??
      spec.default;
    out[name] = convert(spec.env, spec, raw);
  }
  const domains = (out.domains as string[]).map((d) => d.toLowerCase());
  if (domains.length === 0) throw new ConfigError('ADMP_DOMAINS', 'at least one agents domain is required');
  const badDomain = domains.find((d) => !isDomainEntry(d));
  if (badDomain)
    throw new ConfigError(
      'ADMP_DOMAINS',
      `"${badDomain}" is neither a DNS name nor a wildcard (*.inbound.example.com)`,
    );
  if (domains[0]!.startsWith('*.'))
    throw new ConfigError('ADMP_DOMAINS', 'the first domain is the default for agents: name a plain domain first');
  try {
    parseAllowList(out.fetchAllow as string[]);
  } catch (err) {
    throw new ConfigError('ADMP_FETCH_ALLOW', (err as Error).message);
  }
  if ((out.signatureMaxValiditySec as number) < (out.signatureValiditySec as number))
    throw new ConfigError(
      'ADMP_SIGNATURE_MAX_VALIDITY_SEC',
      `must be at least ADMP_SIGNATURE_VALIDITY_SEC (${out.signatureValiditySec as number})`,
    );
  if ((out.smtpTlsCert === '') !== (out.smtpTlsKey === ''))
    throw new ConfigError(
      'ADMP_SMTP_TLS_KEY',
      'ADMP_SMTP_TLS_CERT and ADMP_SMTP_TLS_KEY are set together or not at all',
    );
  if (out.smtpRequireTls && out.smtpTlsCert === '')
    throw new ConfigError('ADMP_SMTP_REQUIRE_TLS', 'requiring TLS needs ADMP_SMTP_TLS_CERT and ADMP_SMTP_TLS_KEY');
  if (Boolean(out.httpTlsCert) !== Boolean(out.httpTlsKey))
    throw new ConfigError(
      out.httpTlsCert ? 'ADMP_HTTP_TLS_KEY' : 'ADMP_HTTP_TLS_CERT',
      'ADMP_HTTP_TLS_CERT and ADMP_HTTP_TLS_KEY go together',
    );
  if (out.httpTlsClientCa && !out.httpTlsCert)
    throw new ConfigError('ADMP_HTTP_TLS_CLIENT_CA', 'mutual TLS needs ADMP_HTTP_TLS_CERT and ADMP_HTTP_TLS_KEY');
  out.domains = Object.freeze(domains);
  return Object.freeze(out) as Config;
}

/** The README configuration table, generated from SETTINGS so the two never drift. */
export function configMarkdown(): string {
  const rows = Object.values(SETTINGS).map(
    (x: Setting) =>
      `| \`${x.env}\` | \`${yamlKey(x.env)}\` | ${x.default === '' ? '(empty)' : `\`${x.default}\``} | ${x.doc} |`,
  );
  return ['| environment | YAML key | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
