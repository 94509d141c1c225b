// Rate quotas with a large burst, counted by blocks ("token leasing", docs/policy.md):
// counting every message in the enqueue statement costs PostgreSQL a row update per key
// and batch, and the server the arrays that carry the keys; for a quota of thousands a
// second that is most of what a quota costs. So for a quota whose burst is at least
// LEASE_MIN_BURST, an instance reserves a block of units with one statement (the same
// GCRA update as enqueue_message's, src/db/rate-quota.ts), keeps them here and admits
// messages from the block with no database work; when the block is spent it reserves
// the next (concurrent takers of one key share one reservation). Smaller quotas (loop
// guards, 60 a minute) stay counted exactly in the enqueue statement.
//
// Never over the quota: a unit is counted in PostgreSQL when it is reserved, before a
// message uses it, and an instance holds at most one block (g units) of a key, so in
// any window at most g × instances messages pass beyond what the exact count would
// admit, and over time never more than the rate. A block expires after its own time
// span (g × interval) or 1 s, whichever is longer: its unused units are dropped, never
// handed back (their time has passed, so the key's tat cannot run ahead of the clock);
// a restart drops them too (fewer admitted, never more). The price: another instance may
// be refused while this one holds unused units, at most g per instance and key.
import type pg from 'pg';
import { reserveQuota, type Reservation } from '../db/rate-quota.js';
import type { EnqueueResult } from '../db/message-row.js';
import type { QuotaCounter } from '../db/enqueue.js';

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

type Refusal = NonNullable<EnqueueResult['refused']>;

/** What the blocks said about a caller's items. */
export interface Admission {
  /** Per item, the counters still to count in the enqueue statement (the exact ones). */
  readonly counters: readonly (readonly QuotaCounter[] | undefined)[];
  /** Per item, its refusal (not to be enqueued), or undefined. */
  readonly refused: readonly (Refusal | undefined)[];
  /** Gives back the units of the items not stored new (duplicates, refused, or none stored after a fault). */
  settle(storedNew: readonly boolean[]): void;
}

export interface QuotaLeases {
  /** Takes one unit of each leased counter per item; an item (an atomic caller: all items) without one is refused. */
  admit(counters: readonly (readonly QuotaCounter[] | undefined)[], atomic: boolean): Promise<Admission>;
}

export function createQuotaLeases(pool: Pick<pg.Pool, 'query'>, nowUs: () => number): QuotaLeases {
  const blocks = new Map<string, Block>();
  const refills = new Map<string, Promise<Reservation>>();

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

  /** A unit of `c`, or the refusal when the key has none left. */
  async function take(c: QuotaCounter, g: number): Promise<Unit | Refusal> {
    for (;;) {
      const unit = unitAtHand(c);
      if (unit) return unit;
      const r = await refill(c, g);
      if (r.granted === 0) return { counter: c.counter, tatUs: r.tatUs };
      // Granted, but others may have taken the block: look again (each turn some unit was reserved).
    }
  }

  const isUnit = (x: Unit | Refusal): x is Unit => 'block' in x;

  return {
    async admit(counters, atomic) {
      // Usually every unit is at hand: no promise per counter then.
      const exact: (QuotaCounter[] | undefined)[] = [];
      const taking: (Unit | Refusal | Promise<Unit | Refusal>)[][] = [];
      let waits = false;
      for (const cs of counters) {
        let rest: QuotaCounter[] | undefined;
        const xs: (Unit | Refusal | Promise<Unit | Refusal>)[] = [];
        for (const c of cs ?? []) {
          const g = blockSize(c);
          if (g === 0) (rest ??= []).push(c);
          else {
            const x = unitAtHand(c) ?? take(c, g);
            waits ||= x instanceof Promise;
            xs.push(x);
          }
        }
        exact.push(rest);
        taking.push(xs);
      }
      const taken = waits ? await Promise.all(taking.map((xs) => Promise.all(xs))) : (taking as (Unit | Refusal)[][]);
      const own = taken.map((xs) => xs.find((x): x is Refusal => !isUnit(x)));
      const anyRefused = own.some((r) => r !== undefined);
      const refused = own.map((r) => r ?? (atomic && anyRefused ? {} : undefined));
      taken.forEach((xs, i) => {
        if (refused[i]) xs.forEach((x) => isUnit(x) && giveBack(x));
      });
      return {
        counters: exact,
        refused,
        settle(storedNew) {
          storedNew.forEach((fresh, i) => {
            if (!fresh && !refused[i]) (taken[i] as Unit[]).forEach(giveBack);
          });
        },
      };
    },
  };
}
