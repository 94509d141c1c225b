// The README's configuration table is generated from src/config.ts SETTINGS
// (`admp config --markdown`); this keeps the two from drifting apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configMarkdown } from '../src/config.js';

test('README configuration table matches the settings the code validates', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const table = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme)?.[1];
  assert.equal(
    table,
    configMarkdown(),
    'run: node bin/admp.js config --markdown, and paste it between the config-table markers',
  );
});
