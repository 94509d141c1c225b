// One formatter for the whole tree: `npm run format` writes, this test checks.
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

test('every TypeScript and JavaScript file is formatted by prettier (npm run format)', () => {
  execFileSync('npx', ['prettier', '--check', '--log-level', 'warn', '.'], { stdio: 'pipe' });
});
