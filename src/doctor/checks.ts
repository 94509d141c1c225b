// The installation checks of `admp doctor`, one function per check. Each reads the
// live component (the database, the bridge, Postfix's maps, Rspamd's controller,
// DNS, the JWKS URL) and compares it with what the configuration says it should be.
import { Resolver } from 'node:dns/promises';
import type { Dispatcher } from 'undici';
import type { Config } from '../config.js';
import type { Admin } from '../admin/admin.js';
import { fetchJwks, JWKS_PATH, jwksUrl } from '../keys/jwks.js';
import { createTxtResolver, fetchDnsKeys, TXT_LABEL } from '../keys/dns.js';
import type { KeySet } from '../keys/key-set-cache.js';
import { fail, pass, type Check } from './report.js';
import type { RunCommand } from './targets.js';

export interface DoctorTargets {
  readonly config: Config;
  readonly admin: Admin;
  /** Agents domain under test. */
  readonly domain: string;
  /** Base URL of the bridge's HTTP listener, e.g. http://127.0.0.1:8080. */
  readonly bridgeUrl: string;
  /** Runs postconf/postmap; `postfixArgs` selects the configuration (`-c dir`) on a shared host. */
  readonly postfix?: { run: RunCommand; args: readonly string[] };
  /** Runs rspamc against the controller at `controller` (host:port). */
  readonly rspamd?: { run: RunCommand; controller: string; password?: string; symbol: string };
  /** undici dispatcher for the JWKS fetch (tests route the agents domain to loopback). */
  readonly dispatcher?: Dispatcher;
}

const check = (name: string, run: Check['run']): Check => ({ name, run });

export function databaseCheck(admin: Admin): Check {
  return check('database reachable and migrated', async () => {
    let pending: string[];
    try {
      pending = await admin.pendingMigrations();
    } catch (err) {
      return fail(
        `cannot query PostgreSQL: ${(err as Error).message}`,
        'check DATABASE_URL and that PostgreSQL runs (pg_isready)',
      );
    }
    return pending.length === 0
      ? pass('reachable, every migration applied')
      : fail(
          `pending migrations: ${pending.join(', ')}`,
          'run `admp migrate` (or start the bridge with ADMP_MIGRATE_ON_START=true)',
        );
  });
}

export function bridgeCheck(bridgeUrl: string): Check {
  return check('bridge ready', async () => {
    const url = `${bridgeUrl.replace(/\/$/, '')}/readyz`;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const body = await r.text();
      return r.status === 200
        ? pass(`${url} answers 200`)
        : fail(
            `${url} answers ${r.status}: ${body.slice(0, 200)}`,
            'see the bridge log (`docker logs` of the bridge); /readyz names the reason',
          );
    } catch (err) {
      return fail(
        `${url}: ${(err as Error).message}`,
        'start the bridge (`admp serve`, or the bridge container) or pass --bridge-url',
      );
    }
  });
}

/** Postfix's answer for an address: the first of its transport maps that knows the address or its domain. */
async function transportOf(
  p: NonNullable<DoctorTargets['postfix']>,
  address: string,
): Promise<{ map: string; nexthop: string } | string> {
  const maps = await p.run(['postconf', ...p.args, '-h', 'transport_maps']);
  if (maps.code !== 0) return `postconf failed: ${maps.output.trim()}`;
  const list = maps.output.split(/[\s,]+/).filter(Boolean);
  if (list.length === 0) return 'transport_maps is empty';
  const domain = address.slice(address.indexOf('@') + 1);
  for (const map of list) {
    // trivial-rewrite asks for the full address first, then the domain (transport(5)).
    for (const key of [address, domain]) {
      const r = await p.run(['postmap', ...p.args, '-q', key, map]);
      if (r.code === 0 && r.output.trim()) return { map, nexthop: r.output.trim().split('\n')[0]! };
    }
  }
  return `none of ${list.join(', ')} routes ${address}`;
}

export function postfixCheck(t: DoctorTargets): Check {
  return check('Postfix routes the agents domain to the bridge', async () => {
    if (!t.postfix) return fail('no Postfix to ask', 'pass --mailcow-dir (Mailcow in Docker) or --postfix-config-dir');
    const probe = `admp-doctor@${t.domain}`;
    const found = await transportOf(t.postfix, probe);
    const fix =
      'run `admp install` again, or add the agents domain to the transport map (postfix/custom_transport.pcre) and `postfix reload`';
    if (typeof found === 'string') return fail(found, fix);
    const port = t.config.lmtpListen ? String(t.config.lmtpListen.port) : undefined;
    const m = /^lmtp:(?:inet:)?(.+):(\d+)$/.exec(found.nexthop);
    if (!m) return fail(`${found.map} routes ${probe} to ${found.nexthop}, not to an LMTP bridge`, fix);
    if (port && m[2] !== port)
      return fail(`${found.map} routes to port ${m[2]}, the bridge listens on ${port} (ADMP_LMTP_LISTEN)`, fix);
    return pass(`${found.map}: ${probe} → ${found.nexthop}`);
  });
}

export function rspamdCheck(t: DoctorTargets): Check {
  return check('Rspamd has the agents_bridge plugin loaded', async () => {
    if (!t.rspamd) return fail('no Rspamd to ask', 'pass --mailcow-dir (Mailcow in Docker) or --rspamd-controller');
    const { run, controller, password, symbol } = t.rspamd;
    const r = await run(['rspamc', '-h', controller, ...(password ? ['-P', password] : []), '-j', 'counters']);
    if (r.code !== 0)
      return fail(
        `rspamc counters failed: ${r.output.trim().slice(0, 300)}`,
        'check that Rspamd runs and its controller answers (password: --rspamd-password)',
      );
    let symbols: { symbol?: string }[];
    try {
      symbols = JSON.parse(r.output) as { symbol?: string }[];
    } catch {
      return fail(`unexpected rspamc output: ${r.output.slice(0, 200)}`, 'check the Rspamd version (3.x expected)');
    }
    return symbols.some((s) => s.symbol === symbol)
      ? pass(`symbol ${symbol} is registered`)
      : fail(
          `symbol ${symbol} is not registered: the plugin is missing or disabled itself`,
          'grep the Rspamd log for "agents_bridge" (it names the bad option), then run `admp install` again',
        );
  });
}

export function mxCheck(t: DoctorTargets): Check {
  return check('DNS has an MX for the agents domain', async () => {
    const r = new Resolver({ timeout: t.config.dnsTimeoutMs, tries: 2 });
    if (t.config.dnsServers.length > 0) r.setServers([...t.config.dnsServers]);
    try {
      const mx = await r.resolveMx(t.domain);
      return mx.length > 0
        ? pass(
            mx
              .sort((a, b) => a.priority - b.priority)
              .map((m) => `${m.priority} ${m.exchange}`)
              .join(', '),
          )
        : fail(`no MX record for ${t.domain}`, `publish "${t.domain}. MX 10 <your Mailcow host>."`);
    } catch (err) {
      return fail(
        `MX ${t.domain}: ${(err as { code?: string }).code ?? (err as Error).message}`,
        `publish "${t.domain}. MX 10 <your Mailcow host>." (partners deliver agent mail there)`,
      );
    }
  });
}

/** Compares a published key set with our valid local keys: every one must be there, byte for byte. */
function comparePublished(what: string, set: KeySet, ours: Map<string, Buffer>, fix: string) {
  if (set.status !== 'ok') return fail(`${what}: ${set.status === 'absent' ? 'nothing published' : set.reason}`, fix);
  const published = new Map(set.keys.map((k) => [k.kid, Buffer.from(k.publicKey)]));
  const missing = [...ours].filter(([kid, key]) => !published.get(kid)?.equals(key)).map(([kid]) => kid);
  const stale = [...published.keys()].filter((kid) => !ours.has(kid));
  if (missing.length > 0) return fail(`${what} lacks or differs for ${missing.join(', ')}`, fix);
  if (stale.length > 0) return fail(`${what} still publishes retired or unknown keys ${stale.join(', ')}`, fix);
  return pass(`${what} serves our ${ours.size} current key${ours.size === 1 ? '' : 's'}`);
}

async function ourKeys(t: DoctorTargets): Promise<Map<string, Buffer>> {
  const rows = await t.admin.validKeys({ source: 'local', domain: t.domain });
  return new Map(rows.map((r) => [r.kid, r.publicKey]));
}

export function agentKeysTxtCheck(t: DoctorTargets): Check {
  return check(`DNS ${TXT_LABEL} TXT serves our current keys`, async () => {
    const set = await fetchDnsKeys(
      t.domain,
      createTxtResolver({ servers: t.config.dnsServers, timeoutMs: t.config.dnsTimeoutMs }),
    );
    return comparePublished(
      `${TXT_LABEL}.${t.domain}`,
      set,
      await ourKeys(t),
      'publish the records `admp key dns` prints',
    );
  });
}

export function jwksCheck(t: DoctorTargets): Check {
  return check('JWKS URL serves our current keys', async () => {
    const o = {
      scheme: t.config.jwksScheme as 'https' | 'http',
      port: t.config.jwksPort,
      timeoutMs: t.config.keyFetchTimeoutMs,
      dispatcher: t.dispatcher,
    };
    const set = await fetchJwks(t.domain, o);
    return comparePublished(
      jwksUrl(t.domain, o),
      set,
      await ourKeys(t),
      `serve the bridge's ${JWKS_PATH} at https://${t.domain} (reverse proxy to the bridge)`,
    );
  });
}
