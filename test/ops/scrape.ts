// Reads a Prometheus text exposition (what /metrics serves) for assertions.

/** The value of one sample: `name` with exactly these labels (any order); undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got =
      (m[2] ?? '')
        .match(/[a-zA-Z_]+="(?:[^"\\]|\\.)*"/g)
        ?.sort()
        .join(',') ?? '';
    if (got === want) return Number(m[3]);
  }
  return undefined;
}

/** Every metric family name the exposition declares (# TYPE lines). */
export function families(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}
