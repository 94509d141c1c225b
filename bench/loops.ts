// N concurrent worker loops for a fixed time, bounded in iterations too, with the
// per-iteration latency recorded: the shape of every Node-driven measurement here
// (pull+ack consumers, pg-boss send and fetch+complete).

/** One iteration's work: the number of items it completed; 0 means the source ran dry. */
export type Step = (worker: number) => Promise<number>;

export interface LoopResult {
  readonly items: number;
  readonly iterations: number;
  readonly seconds: number;
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly firstError?: string;
  /** Some worker found nothing left to do before the time was up. */
  readonly drained: boolean;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// Past this many failures the measurement means nothing; stop instead of spinning.
const MAX_ERRORS = 100;

export async function runLoops(
  workers: number,
  seconds: number,
  step: Step,
  maxIterations = 10_000_000,
): Promise<LoopResult> {
  const started = performance.now();
  const end = started + seconds * 1000;
  const latencies: number[] = [];
  let items = 0;
  let errors = 0;
  let firstError: string | undefined;
  let drained = false;
  const worker = async (w: number) => {
    while (performance.now() < end && latencies.length < maxIterations && errors < MAX_ERRORS && !drained) {
      const t = performance.now();
      try {
        const n = await step(w);
        if (n === 0) drained = true;
        items += n;
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    items,
    iterations: latencies.length,
    seconds: elapsed,
    perSec: items / elapsed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
    firstError,
    drained,
  };
}
