// The benches' numeric settings, read from the environment: unset or empty means the
// default; anything but a positive integer stops the run with the variable's name.

export function positiveInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return Number(v);
}

/** The pull side's settings, read alike by run.ts, interfaces.ts and sdk-consume.ts (bench/README "Settings"). */
export function pullSettings(defaultSeconds: number) {
  return {
    seconds: positiveInt('BENCH_SECONDS', defaultSeconds),
    warmupSeconds: positiveInt('BENCH_WARMUP_SECONDS', 3),
    consumers: positiveInt('BENCH_CONSUMERS', 16),
    pullInboxes: positiveInt('BENCH_PULL_INBOXES', 4),
    batch: positiveInt('BENCH_BATCH', 10),
    backlog: positiveInt('BENCH_BACKLOG', 200_000),
  };
}
