// The SDK as a package: its types are the ones generated from docs/openapi.json (not
// edited by hand, not stale), it compiles with the DOM library and without Node's
// types (so it runs in Deno, Bun and browsers), and it imports nothing from node:.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

test('src/sdk/openapi.ts is what openapi-typescript makes of docs/openapi.json (npm run openapi)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'admp-sdk-types-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('npx', ['openapi-typescript', 'docs/openapi.json', '-o', join(dir, 'openapi.ts')], {
    cwd: root,
    stdio: 'pipe',
  });
  assert.equal(
    readFileSync(join(root, 'src/sdk/openapi.ts'), 'utf8'),
    readFileSync(join(dir, 'openapi.ts'), 'utf8'),
    'stale SDK types: run `npm run openapi`',
  );
});

test('the SDK (src/sdk) and the shared core modules it uses compile without Node types and import no node: module', () => {
  execFileSync('npx', ['tsc', '-p', 'sdk/tsconfig.json', '--noEmit'], { cwd: root, stdio: 'pipe' });
  const sources = readdirSync(join(root, 'src/sdk')).filter((f) => f.endsWith('.ts'));
  assert.ok(sources.length > 5);
  for (const f of sources) {
    const text = readFileSync(join(root, 'src/sdk', f), 'utf8');
    assert.doesNotMatch(text, /from ['"]node:/, `${f} imports a Node module`);
  }
});
