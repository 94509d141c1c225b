// docker-compose.override.yml: the bridge (and its PostgreSQL) merged into the admin's
// override with the yaml Document API, so their services, comments and key order stay.
// The shared network is only referenced, never redeclared (a partial redeclaration
// breaks Mailcow's IPAM: mailcow-dockerized issue #2403).
import { Document, isMap, isScalar, parseDocument, visit, type Node, type YAMLMap } from 'yaml';
import { InstallError } from './install-error.js';
import {
  BRIDGE_ALIAS,
  BRIDGE_HTTP_PORT,
  BRIDGE_LMTP_PORT,
  BRIDGE_SERVICE,
  MAILCOW_NETWORK,
  OVERRIDE_FILE,
  POSTGRES_ALIAS,
  POSTGRES_SERVICE,
  POSTGRES_VOLUME,
  BRIDGE_VOLUME,
} from './layout.js';

export interface BridgeSpec {
  readonly image: string;
  readonly domain: string;
  /** External PostgreSQL; null adds the admp-postgres service with a named volume. */
  readonly databaseUrl: string | null;
  readonly postgresPassword: string;
  readonly ingressToken: string;
  readonly postfilter: boolean;
  /** host[:port] the HTTP API is published on, empty for none. */
  readonly httpPublish: string;
}

// Compose interpolates these from .env (= mailcow.conf), as Mailcow's own services do,
// so a later change of the Mailcow network follows without a reinstall.
const IPV4 = '${IPV4_NETWORK:-172.22.1}';
const IPV6 = '${IPV6_NETWORK:-fd4d:6169:6c63:6f77::/64}';

function bridgeService(spec: BridgeSpec): Record<string, unknown> {
  const databaseUrl = spec.databaseUrl ?? `postgres://admp:${spec.postgresPassword}@${POSTGRES_ALIAS}:5432/admp`;
  return {
    image: spec.image,
    // Built here by the installer, in no registry: Mailcow's update.sh runs `docker compose pull`
    // for every service, which would fail on this one without it.
    pull_policy: 'never',
    restart: 'always',
    ...(spec.databaseUrl === null ? { depends_on: { [POSTGRES_SERVICE]: { condition: 'service_healthy' } } } : {}),
    environment: {
      DATABASE_URL: databaseUrl,
      ADMP_HTTP_LISTEN: `0.0.0.0:${BRIDGE_HTTP_PORT}`,
      ADMP_LMTP_LISTEN: `0.0.0.0:${BRIDGE_LMTP_PORT}`,
      // Empty turns the Rspamd road off (src/config.ts): an ingress that refuses every call.
      ADMP_LMTP_ALLOW: `${IPV4}.0/24,${IPV6}`,
      ADMP_INGRESS_TOKEN: spec.postfilter ? spec.ingressToken : '',
      ADMP_DOMAINS: spec.domain,
      ADMP_DATA_DIR: '/app/var',
      // = Postfix myhostname = the authserv-id of Mailcow's Authentication-Results.
      ADMP_MTA_HOSTNAME: '${MAILCOW_HOSTNAME}',
    },
    ...(spec.httpPublish ? { ports: [`${spec.httpPublish}:${BRIDGE_HTTP_PORT}`] } : {}),
    volumes: [`${BRIDGE_VOLUME}:/app/var`],
    // Longer than ADMP_SHUTDOWN_GRACE_MS (10 s), so in-flight work finishes before Docker kills.
    stop_grace_period: '30s',
    // Mailcow's unbound, like every Mailcow service (DNS for _agentkeys and DKIM lookups).
    dns: [`${IPV4}.254`],
    networks: { [MAILCOW_NETWORK]: { aliases: [BRIDGE_ALIAS] } },
  };
}

function postgresService(spec: BridgeSpec): Record<string, unknown> {
  return {
    image: 'postgres:17-alpine',
    // Pulled by the first `up`; update.sh's `docker compose pull` leaves it as it is (a new
    // PostgreSQL is the admin's decision: README "Upgrade").
    pull_policy: 'missing',
    restart: 'always',
    environment: { POSTGRES_DB: 'admp', POSTGRES_USER: 'admp', POSTGRES_PASSWORD: spec.postgresPassword },
    volumes: [`${POSTGRES_VOLUME}:/var/lib/postgresql/data`],
    healthcheck: { test: ['CMD-SHELL', 'pg_isready -U admp -d admp'], interval: '10s', timeout: '5s', retries: 5 },
    networks: { [MAILCOW_NETWORK]: { aliases: [POSTGRES_ALIAS] } },
  };
}

/** The services and volumes the installer owns, keyed as they appear in the override. */
export function ownedEntries(spec: BridgeSpec): { services: Record<string, unknown>; volumes: Record<string, object> } {
  return spec.databaseUrl === null
    ? {
        services: { [BRIDGE_SERVICE]: bridgeService(spec), [POSTGRES_SERVICE]: postgresService(spec) },
        volumes: { [BRIDGE_VOLUME]: {}, [POSTGRES_VOLUME]: {} },
      }
    : { services: { [BRIDGE_SERVICE]: bridgeService(spec) }, volumes: { [BRIDGE_VOLUME]: {} } };
}

const OWNED_SERVICES = [BRIDGE_SERVICE, POSTGRES_SERVICE];
const OWNED_VOLUMES = [BRIDGE_VOLUME, POSTGRES_VOLUME];

/** Indentation the admin uses, so that their part of the file is re-emitted unchanged. */
function styleOf(text: string): { indent: number; indentSeq: boolean } {
  const m = /^[A-Za-z_][\w.-]*:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*( +)\S/m.exec(text);
  const indent = m ? m[1]!.length : 2;
  const flushSeq = /^( *)[\w.-]+:[ \t]*\n\1- /m.test(text);
  return { indent: Math.min(Math.max(indent, 2), 8), indentSeq: !flushSeq };
}

function parseOverride(text: string): Document {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new InstallError(
      `not valid YAML${line ? ` (line ${line})` : ''}: ${e.message.split('\n')[0]}; fix it first, nothing was changed`,
      OVERRIDE_FILE,
    );
  }
  if (doc.contents !== null && !isMap(doc.contents))
    throw new InstallError('top level is not a mapping; fix it first, nothing was changed', OVERRIDE_FILE);
  for (const key of ['services', 'volumes']) {
    const v = doc.get(key, true);
    if (v !== undefined && !(isScalar(v) && v.value === null) && !isMap(v))
      throw new InstallError(`"${key}" is not a mapping; fix it first, nothing was changed`, OVERRIDE_FILE);
  }
  return doc;
}

/** Our port strings and ${…} values are quoted: YAML 1.1 readers take 8080:8080 as base 60. */
function quoteRisky(node: Node): Node {
  visit(node, {
    Scalar(_key, n) {
      if (typeof n.value === 'string' && /[:$]/.test(n.value)) n.type = 'QUOTE_DOUBLE';
    },
  });
  return node;
}

function ensureMap(doc: Document, key: string): YAMLMap {
  const v = doc.get(key, true);
  if (isMap(v)) return v;
  const map = doc.createNode({}) as YAMLMap;
  doc.set(key, map);
  return map;
}

export interface MergedOverride {
  readonly text: string;
  /** Top-level keys (services, volumes) that did not exist before. */
  readonly createdKeys: readonly string[];
}

/** The override with exactly the owned services/volumes of `spec` (others of ours removed). */
export function mergeOverride(current: string | null, spec: BridgeSpec): MergedOverride {
  const owned = ownedEntries(spec);
  const text = current ?? '';
  const doc = parseOverride(text);
  if (doc.contents === null) doc.contents = doc.createNode({}) as YAMLMap;
  const createdKeys: string[] = [];
  for (const [key, entries, all] of [
    ['services', owned.services, OWNED_SERVICES],
    ['volumes', owned.volumes, OWNED_VOLUMES],
  ] as const) {
    const has = isMap(doc.get(key, true));
    if (Object.keys(entries).length === 0) {
      if (has) for (const name of all) ensureMap(doc, key).delete(name);
      continue;
    }
    if (!has) createdKeys.push(key);
    const map = ensureMap(doc, key);
    for (const name of all) if (!(name in entries)) map.delete(name);
    for (const [name, value] of Object.entries(entries)) {
      map.set(name, quoteRisky(doc.createNode(value)));
    }
  }
  return { text: doc.toString({ ...styleOf(text), lineWidth: 0 }), createdKeys };
}

/** The override without anything the installer owns; `createdKeys` go too once empty. */
export function unmergeOverride(current: string, createdKeys: readonly string[]): string {
  const doc = parseOverride(current);
  if (doc.contents === null) return current;
  for (const [key, names] of [
    ['services', OWNED_SERVICES],
    ['volumes', OWNED_VOLUMES],
  ] as const) {
    const map = doc.get(key, true);
    if (!isMap(map)) continue;
    for (const name of names) map.delete(name);
    if (map.items.length === 0 && createdKeys.includes(key)) doc.delete(key);
  }
  if (isMap(doc.contents) && doc.contents.items.length === 0 && !doc.commentBefore && !doc.comment) return '';
  return doc.toString({ ...styleOf(current), lineWidth: 0 });
}

/** True when the override defines the bridge service (used to decide how to roll back). */
export function definesBridge(text: string | null): boolean {
  if (!text) return false;
  const doc = parseDocument(text);
  return doc.errors.length === 0 && doc.hasIn(['services', BRIDGE_SERVICE]);
}
