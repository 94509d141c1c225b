// Polling for what a test cannot be told about (a container turning healthy, a port opening).

/** `probe()` until it gives a value (errors count as "not yet"), once a second, at most `seconds`; the last error says why not. */
export async function waitFor<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + seconds * 1000;
  let last: unknown;
  for (;;) {
    const v = await probe().catch((err: unknown) => {
      last = err;
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`${what}: not within ${seconds} s${last ? ` (${String(last)})` : ''}`);
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}
