// The SDK as a package: its types are generated from docs/openapi.json (src/sdk/openapi.ts
// is not in git: npm ci, build and typecheck make it; so is this test), it compiles with the DOM library and without Node's
// types (so it runs in Deno, Bun and browsers), and it imports nothing from node:.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

test('the SDK (src/sdk) and the shared core modules it uses compile without Node types and import no node: module', () => {
  execFileSync('npm', ['run', 'sdk-types'], { cwd: root, stdio: 'pipe' });
  execFileSync('npx', ['tsc', '-p', 'sdk/tsconfig.json', '--noEmit'], { cwd: root, stdio: 'pipe' });
  const sources = readdirSync(join(root, 'src/sdk')).filter((f) => f.endsWith('.ts'));
  assert.ok(sources.length > 5);
  for (const f of sources) {
    const text = readFileSync(join(root, 'src/sdk', f), 'utf8');
    assert.doesNotMatch(text, /from ['"]node:/, `${f} imports a Node module`);
  }
});
