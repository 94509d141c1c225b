// The key resolver the signature verifier is given: (domain, kid) → key, looked up
// in agent_key (our keys and pinned partner keys), then, for partner domains only,
// the partner's JWKS and then its `_agentkeys` TXT records. A key is never looked up
// by kid alone, and every source answers for the domain it was asked about.
import type { LookupFunction } from 'node:net';
import type { Config } from '../config.js';
import type { KeyLookup, KeyResolver } from '../core/signature.js';
import { findValidKey } from '../db/keys.js';
import type { Queryable } from '../db/pool.js';
import { KeySetCache } from './key-set-cache.js';
import { fetchJwks } from './jwks.js';
import { createTxtResolver, fetchDnsKeys, type ResolveTxt } from './dns.js';
import type { Metrics } from '../metrics.js';
import { guardedDispatcher } from '../net/guarded-fetch.js';
import { isOurDomain } from '../core/domains.js';

/**
 * Looks (domain, kid) up in agent_key at the clock's time. A database fault is
 * "unavailable", never "unknown". Found keys are kept for `cacheMs` (every ingested
 * mail needs one; a revocation takes effect within that time); misses are not kept.
 */
export function databaseKeys(db: Queryable, now: () => number, cacheMs = 0): KeyResolver {
  const found = new Map<string, { lookup: KeyLookup; at: number }>();
  return async (domain, kid) => {
    const id = `${domain}\u0000${kid}`;
    const hit = found.get(id);
    if (hit && now() - hit.at < cacheMs) return hit.lookup;
    try {
      const row = await findValidKey(db, domain, kid, new Date(now()));
      if (!row) return { status: 'not_found' };
      const lookup: KeyLookup = {
        status: 'found',
        key: { domain: row.domain, kid: row.kid, agent: row.agent, publicKey: row.publicKey, source: row.source },
      };
      if (cacheMs > 0) found.set(id, { lookup, at: now() });
      return lookup;
    } catch (err) {
      return { status: 'unavailable', reason: `key store: ${(err as Error).message}` };
    }
  };
}

/**
 * Tries `local` first; our own domains stop there (we are their authority). Partner
 * domains go on through `remote` in order. Any source finding the key wins; if none
 * does and one of them could not answer, the result is "unavailable" (the key may be
 * in the source we could not read, so the sender should retry), else "not_found".
 */
export function chainResolvers(
  ourDomains: readonly string[],
  local: KeyResolver,
  remote: readonly KeyResolver[],
): KeyResolver {
  return async (domain, kid) => {
    const first = await local(domain, kid);
    if (first.status === 'found' || isOurDomain(ourDomains, domain)) return first;
    const unavailable: string[] = first.status === 'unavailable' ? [first.reason] : [];
    for (const source of remote) {
      const r: KeyLookup = await source(domain, kid);
      if (r.status === 'found') return r;
      if (r.status === 'unavailable') unavailable.push(r.reason);
    }
    return unavailable.length > 0 ? { status: 'unavailable', reason: unavailable.join('; ') } : { status: 'not_found' };
  };
}

// Our own and pinned keys, from the database: see databaseKeys.
const LOCAL_KEY_CACHE_MS = 5000;
// A kid not in a cached set refetches that domain's set at most once a minute.
const REFETCH_MS = 60_000;

export interface KeyResolverDeps {
  readonly db: Queryable;
  /** Milliseconds clock (default Date.now). */
  readonly now?: () => number;
  /** For tests: name resolution of partner JWKS hosts (the address guard still applies). */
  readonly lookup?: LookupFunction;
  /** For tests: replaces the DNS resolver built from config. */
  readonly resolveTxt?: ResolveTxt;
  readonly metrics?: Metrics;
}

/** The production resolver: agent_key, then cached JWKS and DNS discovery, all bounded by config. */
export function createKeyResolver(config: Config, deps: KeyResolverDeps): KeyResolver {
  const now = deps.now ?? Date.now;
  const cache = (source: 'jwks' | 'dns') => ({
    ttlMs: config.keyCacheSec * 1000,
    refetchMs: Math.min(REFETCH_MS, config.keyCacheSec * 1000),
    now,
    observe: (event: 'hit' | 'miss' | 'fetch_failed') => {
      if (event === 'fetch_failed') deps.metrics?.keyFetchFailures.inc({ source });
      else deps.metrics?.keyLookups.inc({ source, result: event });
    },
  });
  // Partners choose where their JWKS host resolves to: never our own network (guarded-fetch.ts).
  const dispatcher = guardedDispatcher({ allow: config.fetchAllow, lookup: deps.lookup });
  const jwks = new KeySetCache(
    (d) =>
      fetchJwks(d, {
        scheme: config.jwksScheme as 'https' | 'http',
        port: config.jwksPort,
        timeoutMs: config.keyFetchTimeoutMs,
        dispatcher,
      }),
    cache('jwks'),
  );
  const resolveTxt =
    deps.resolveTxt ?? createTxtResolver({ servers: config.dnsServers, timeoutMs: config.dnsTimeoutMs });
  const dns = new KeySetCache((d) => fetchDnsKeys(d, resolveTxt), cache('dns'));
  return chainResolvers(config.domains, databaseKeys(deps.db, now, LOCAL_KEY_CACHE_MS), [
    (d, k) => jwks.lookup(d, k),
    (d, k) => dns.lookup(d, k),
  ]);
}
