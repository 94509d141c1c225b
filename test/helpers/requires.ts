// Tests that drive real Debian packages (rspamd, postfix, ...) skip with a one-line reason
// when a binary is missing, and fail instead under ADMP_E2E=1, where skipping would hide a gap.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Skips `t` with a one-line reason (returns false), or throws under ADMP_E2E=1. */
export function requirePackage(t: TestContext, present: boolean, reason: string): boolean {
  if (present) return true;
  if (process.env.ADMP_E2E === '1') throw new Error(`${reason} (ADMP_E2E=1 forbids skipping)`);
  t.skip(reason);
  return false;
}

/** True when every binary is on PATH; otherwise skips `t` (returns false) or throws under ADMP_E2E=1. */
export function requireBinaries(t: TestContext, names: readonly string[]): boolean {
  const missing = names.filter((n) => !onPath(n));
  return requirePackage(t, missing.length === 0, `needs ${missing.join(', ')} on PATH`);
}
