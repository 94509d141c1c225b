// The shape of `admp doctor`: named checks, each passing or failing with what it saw
// and, when it fails, what to do about it. Run in order; one failing does not stop
// the others, so the admin sees every problem in one go.

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  /** What was seen: the value found, or why the check failed. */
  readonly detail: string;
  /** What to do about a failure. */
  readonly fix?: string;
}

export interface Check {
  readonly name: string;
  run(): Promise<Omit<CheckResult, 'name'>>;
}

export const pass = (detail: string): Omit<CheckResult, 'name'> => ({ ok: true, detail });
export const fail = (detail: string, fix: string): Omit<CheckResult, 'name'> => ({ ok: false, detail, fix });

export async function runChecks(checks: readonly Check[], onResult?: (r: CheckResult) => void): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const c of checks) {
    let r: Omit<CheckResult, 'name'>;
    try {
      r = await c.run();
    } catch (err) {
      r = fail(
        `could not check: ${(err as Error).message}`,
        'fix the failures above first (most checks need the database)',
      );
    }
    const result = { name: c.name, ...r };
    out.push(result);
    onResult?.(result);
  }
  return out;
}

export function formatResult(r: CheckResult): string {
  return `${r.ok ? 'PASS' : 'FAIL'}  ${r.name}: ${r.detail}${r.ok || !r.fix ? '' : `\n      fix: ${r.fix}`}`;
}
