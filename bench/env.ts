// The benches' numeric settings, read from the environment: unset or empty means the
// default; anything but a positive integer stops the run with the variable's name.

export function positiveInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return Number(v);
}
