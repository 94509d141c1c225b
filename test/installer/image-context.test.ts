// The installer builds the bridge image from IMAGE_CONTEXT only (and the Docker tests do too):
// every source compose/Dockerfile copies from the build context must be in it, or the build
// fails on a Mailcow host while a full `docker build .` still passes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { IMAGE_CONTEXT } from '../../src/installer/run.js';
import { REPO } from './checkout.js';

test("every COPY source of compose/Dockerfile is in the installer's image context", () => {
  const sources = readFileSync(join(REPO, 'compose/Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => /^COPY /.test(l) && !/--from=/.test(l))
    .flatMap((l) => l.trim().split(/\s+/).slice(1, -1));
  assert.ok(sources.length >= 5, sources.join(' '));
  for (const src of sources)
    assert.ok(
      IMAGE_CONTEXT.some((c) => src === c || src.startsWith(`${c}/`)),
      `${src} is copied by compose/Dockerfile but not in IMAGE_CONTEXT`,
    );
});
