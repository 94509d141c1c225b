// Every file the installer writes is ignored by Mailcow's own .gitignore (the fixture's
// gitignore.upstream), so update.sh's `git commit -a` / `merge -Xtheirs` never touches it.
// Checked by git itself (git check-ignore), on the paths an install really wrote.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { MANAGED_FILES } from '../../src/installer/plan.js';
import { requireBinaries } from '../helpers/requires.js';
import { FIXTURE, copyCheckout, fileDeps, install } from './checkout.js';

function ignored(paths: readonly string[]): Set<string> {
  const repo = mkdtempSync(join(tmpdir(), 'admp-gitignore-'));
  try {
    execFileSync('git', ['init', '-q', repo]);
    copyFileSync(join(FIXTURE, 'gitignore.upstream'), join(repo, '.gitignore'));
    // --no-index: judge the patterns alone, whether or not the files exist here.
    // Exit 1 means "none of them is ignored".
    const r = spawnSync('git', ['-C', repo, 'check-ignore', '--no-index', '--stdin'], { input: paths.join('\n') });
    if (r.status !== 0 && r.status !== 1) throw new Error(`git check-ignore: ${r.stderr.toString()}`);
    return new Set(r.stdout.toString().split('\n').filter(Boolean));
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
}

it("every file an install writes is ignored by Mailcow's .gitignore", async (t) => {
  if (!requireBinaries(t, ['git'])) return;
  const c = copyCheckout();
  try {
    const r = await install(c.dir, fileDeps().deps, { mode: 'both' });
    assert.deepEqual([...r.changedFiles].sort(), [...MANAGED_FILES].sort(), 'mode both writes every managed file');
    const hits = ignored(r.changedFiles);
    assert.deepEqual(
      r.changedFiles.filter((p) => !hits.has(p)),
      [],
    );
    // The check has teeth: Mailcow's tracked files and the documented plugin places are not ignored.
    const notIgnored = [
      'data/conf/postfix/main.cf',
      'data/conf/rspamd/rspamd.conf.local',
      'data/conf/rspamd/plugins.d/agents_bridge.lua',
      'data/conf/rspamd/lua/rspamd.local.lua',
    ];
    assert.deepEqual(
      notIgnored.filter((p) => ignored([p]).size > 0),
      [],
    );
  } finally {
    c.remove();
  }
});
