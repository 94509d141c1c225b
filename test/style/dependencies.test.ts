// The import rules (.dependency-cruiser.cjs, docs/architecture.md): core ← db ←
// services ← adapters, no cycles. dependency-cruiser exits non-zero on a violation.
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('imports run one way and form no cycle (dependency-cruiser)', () => {
  try {
    execFileSync('npx', ['depcruise', '--config', '.dependency-cruiser.cjs', 'src'], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stdout?: Buffer; stderr?: Buffer };
    assert.fail(`${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`);
  }
});
