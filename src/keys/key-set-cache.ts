// A per-domain cache of discovered key sets (a partner's JWKS, its `_agentkeys` TXT
// records). A whole set is fetched and cached with a TTL. A kid missing from a cached
// set causes one refetch before it is refused (a key rotated in since the last fetch
// is found at once), and such refetches happen at most once per domain per
// `refetchMs` (a flood of messages with invented kids cannot make us hammer the
// partner's server or DNS). Failures are cached the same way, so an unreachable
// partner is asked once per `refetchMs` at most.
import type { AgentPublicKey, KeyLookup } from '../core/signature.js';

/** What one fetch of a domain's published keys gave. */
export type KeySet =
  | { readonly status: 'ok'; readonly keys: readonly AgentPublicKey[] }
  /** The domain publishes nothing here (HTTP 404, NXDOMAIN): a permanent answer. */
  | { readonly status: 'absent' }
  | { readonly status: 'unavailable'; readonly reason: string };

export interface KeySetCacheOptions {
  readonly ttlMs: number;
  readonly refetchMs: number;
  /** Milliseconds clock, injected for tests. */
  readonly now: () => number;
  /** Told of each lookup answered from the cache (`hit`) or by a fetch (`miss`), and of failed fetches. */
  readonly observe?: (event: 'hit' | 'miss' | 'fetch_failed') => void;
}

interface Entry {
  readonly at: number;
  readonly set: KeySet;
  /** Set when this fetch was a refetch for a kid the previous set lacked. */
  readonly refetch?: true;
}

// Senders choose the domains we look up, so the cache is bounded (oldest out first).
const MAX_DOMAINS = 10_000;

export class KeySetCache {
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Entry>>();

  constructor(
    private readonly fetchSet: (domain: string) => Promise<KeySet>,
    private readonly opts: KeySetCacheOptions,
  ) {}

  async lookup(domain: string, kid: string): Promise<KeyLookup> {
    let e = this.#entries.get(domain);
    const age = e ? this.opts.now() - e.at : Infinity;
    const unknownKid =
      e !== undefined && age < this.opts.ttlMs && !find(e.set, kid) && (!e.refetch || age >= this.opts.refetchMs);
    if (!e || age >= this.opts.ttlMs || unknownKid) {
      this.opts.observe?.('miss');
      e = await this.#fetch(domain, unknownKid);
    } else this.opts.observe?.('hit');
    const key = find(e.set, kid);
    if (key) return { status: 'found', key };
    return e.set.status === 'unavailable' ? { status: 'unavailable', reason: e.set.reason } : { status: 'not_found' };
  }

  /** Concurrent lookups for one domain share one fetch. */
  #fetch(domain: string, refetch: boolean): Promise<Entry> {
    let p = this.#inflight.get(domain);
    if (!p) {
      p = this.fetchSet(domain)
        .catch((err: unknown): KeySet => ({ status: 'unavailable', reason: (err as Error).message }))
        .then((set) => {
          if (set.status === 'unavailable') this.opts.observe?.('fetch_failed');
          const e: Entry = { at: this.opts.now(), set, ...(refetch ? { refetch: true as const } : {}) };
          this.#entries.delete(domain);
          if (this.#entries.size >= MAX_DOMAINS) this.#entries.delete(this.#entries.keys().next().value!);
          this.#entries.set(domain, e);
          return e;
        })
        .finally(() => this.#inflight.delete(domain));
      this.#inflight.set(domain, p);
    }
    return p;
  }
}

const find = (set: KeySet, kid: string): AgentPublicKey | undefined =>
  set.status === 'ok' ? set.keys.find((k) => k.kid === kid) : undefined;
