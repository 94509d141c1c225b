// Rate quotas with a large burst, counted by blocks ("token leasing", docs/policy.md):
// counting every message in the enqueue statement costs PostgreSQL a row update per key
// and batch, and the server the arrays that carry the keys; for a quota of thousands a
// second that is most of what a quota costs. So for a quota whose burst is at least
// LEASE_MIN_BURST, an instance reserves a block of units with one statement (the same
// GCRA update as enqueue_message's, src/db/rate-quota.ts), keeps them here and admits
// messages from the block with no database work; when the block is spent it reserves
// the next (concurrent takers of one key share one reservation). When a reservation finds
// the key spent, its messages are counted exactly in the enqueue statement until a place
// frees up: the statement refuses them (with the key's tat, for Retry-After), refuses a
// mail whole, and still answers a retry of a stored message as a duplicate. Smaller
// quotas (loop guards, 60 a minute) are always counted exactly there.
//
// Never over the quota: a unit is counted in PostgreSQL when it is reserved, before a
// message uses it, and an instance holds at most one block (g units) of a key, so in
// any window at most g × instances messages pass beyond what the exact count would
// admit, and over time never more than the rate. A block expires after its own time
// span (g × interval) or 10 s, whichever is longer: its unused units are dropped, never
// handed back (their time has passed, so the key's tat cannot run ahead of the clock);
// a restart drops them too (fewer admitted, never more). The price: another instance may
// be refused while this one holds unused units, at most g per instance and key, for at
// most a block's life. The 10 s floor is for quotas far out of reach, whose blocks cover
// microseconds: one reservation per key every 10 s, not one every few messages.
import type pg from 'pg';
import { reserveQuota, type Reservation } from '../db/rate-quota.js';
import type { QuotaCounter } from '../db/enqueue.js';
import type { EnqueueResult } from '../db/message-row.js';

/** A quota whose burst is at least this many is counted by blocks. */
export const LEASE_MIN_BURST = 128;
/** At most this many units in one block. */
const MAX_BLOCK = 1024;
/** A block covers at most this much of a quota's time (so a slow quota's block is not held for long). */
const MAX_SPAN_US = 60_000_000;
/** A block is kept at least this long, so a quota far out of reach still costs one reservation per block. */
const MIN_LIFE_US = 10_000_000;
/** Blocks smaller than this are not worth it: counted exactly. */
const MIN_BLOCK = 8;

/** How many units a block of this counter holds, or 0 when it is counted exactly. */
export function blockSize(c: QuotaCounter): number {
  if (c.burst < LEASE_MIN_BURST) return 0;
  const g = Math.min(Math.floor(c.burst / 16), MAX_BLOCK, Math.floor(MAX_SPAN_US / c.intervalUs));
  return g >= MIN_BLOCK ? g : 0;
}

interface Block {
  left: number;
  readonly expiresUs: number;
}

/** A unit taken from a block, given back to it when its message is not stored new. */
interface Unit {
  readonly counter: string;
  readonly block: Block;
}

/** What the blocks said about a caller's items. */
export interface Admission {
  /**
   * Per item, the counters to count in the enqueue statement: the exact ones, and a
   * leased one whose key had no unit left (so the statement refuses the item, or admits
   * it if a place freed since, and a duplicate is still answered as one), or undefined
   * when none of the items has any.
   */
  readonly counters: readonly (readonly QuotaCounter[] | undefined)[] | undefined;
  /** Gives back the units of the items not stored new (duplicates, refused). */
  settle(results: readonly EnqueueResult[]): void;
}

export interface QuotaLeases {
  /** Takes one unit of each leased counter per item, from this instance's blocks. */
  admit(counters: readonly (readonly QuotaCounter[] | undefined)[]): Promise<Admission>;
}

/** Per item, its exact counters and the leased ones it got no unit of (undefined: none). */
function exactCounters(
  counters: readonly (readonly QuotaCounter[] | undefined)[],
  taken: readonly (readonly (Unit | undefined)[])[],
): (QuotaCounter[] | undefined)[] {
  return counters.map((cs, i) => {
    let k = 0;
    const rest = cs?.filter((c) => blockSize(c) === 0 || taken[i]![k++] === undefined);
    return rest?.length ? rest : undefined;
  });
}

export function createQuotaLeases(pool: Pick<pg.Pool, 'query'>, nowUs: () => number): QuotaLeases {
  const blocks = new Map<string, Block>();
  const refills = new Map<string, Promise<Reservation>>();
  /** Keys a reservation found spent: until a place frees up, their messages are counted exactly. */
  const spent = new Map<string, number>();

  function giveBack(u: Unit): void {
    if (blocks.get(u.counter) === u.block && u.block.expiresUs > nowUs()) u.block.left++;
  }

  /** One reservation for the key at a time: concurrent takers wait for it, then take from its block. */
  function refill(c: QuotaCounter, g: number): Promise<Reservation> {
    let p = refills.get(c.counter);
    if (!p) {
      const now = nowUs();
      p = reserveQuota(pool, c.counter, c.intervalUs, c.burst, g, now)
        .then((r) => {
          if (r.granted > 0)
            blocks.set(c.counter, { left: r.granted, expiresUs: now + Math.max(g * c.intervalUs, MIN_LIFE_US) });
          // The next place frees up when the tat is back within the burst.
          else spent.set(c.counter, r.tatUs - (c.burst - 1) * c.intervalUs);
          return r;
        })
        .finally(() => refills.delete(c.counter));
      refills.set(c.counter, p);
    }
    return p;
  }

  /** A unit of `c` from its block at hand, if it has one. */
  function unitAtHand(c: QuotaCounter): Unit | undefined {
    const block = blocks.get(c.counter);
    if (!block || block.left === 0 || block.expiresUs <= nowUs()) return undefined;
    block.left--;
    return { counter: c.counter, block };
  }

  let forgotAt = 0;
  /** Forgets expired blocks and spent marks (at most once a second), so keys gone quiet take no memory. */
  function forgetOld(now: number): void {
    if (now - forgotAt < 1_000_000) return;
    forgotAt = now;
    for (const [key, block] of blocks) if (block.expiresUs <= now) blocks.delete(key);
    for (const [key, until] of spent) if (until <= now) spent.delete(key);
  }

  /** A unit of `c`, or undefined when the key has none left (the message is then counted exactly). */
  async function take(c: QuotaCounter, g: number): Promise<Unit | undefined> {
    forgetOld(nowUs());
    for (;;) {
      const unit = unitAtHand(c);
      if (unit) return unit;
      const until = spent.get(c.counter);
      if (until !== undefined) {
        if (nowUs() < until) return undefined;
        spent.delete(c.counter);
      }
      const r = await refill(c, g);
      if (r.granted === 0) return undefined;
      // Granted, but others may have taken the block: look again (each turn some unit was reserved).
    }
  }

  return {
    async admit(counters) {
      // Usually every unit is at hand: no promise per counter then.
      const taking: (Unit | Promise<Unit | undefined>)[][] = [];
      let waits = false;
      let exactToo = false;
      for (const cs of counters) {
        const xs: (Unit | Promise<Unit | undefined>)[] = [];
        for (const c of cs ?? []) {
          const g = blockSize(c);
          if (g === 0) exactToo = true;
          else {
            const x = unitAtHand(c) ?? take(c, g);
            waits ||= x instanceof Promise;
            xs.push(x);
          }
        }
        taking.push(xs);
      }
      const taken = waits ? await Promise.all(taking.map((xs) => Promise.all(xs))) : (taking as Unit[][]);
      const fellBack = waits && taken.some((xs) => xs.includes(undefined));
      return {
        counters: exactToo || fellBack ? exactCounters(counters, taken) : undefined,
        settle(results) {
          taken.forEach((units, i) => {
            const r = results[i]!;
            if (r.duplicate || r.refused) for (const u of units) if (u) giveBack(u);
          });
        },
      };
    },
  };
}
