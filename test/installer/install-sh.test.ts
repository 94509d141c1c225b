// install.sh end to end without Docker: prerequisites checked, hand-over to `admp install`
// and `admp uninstall` through the real CLI, and the checkout back to its original bytes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { it } from 'node:test';
import { STATE_FILE } from '../../src/installer/layout.js';
import { requireBinaries } from '../helpers/requires.js';
import { REPO, copyCheckout, treeBytes } from './checkout.js';

const run = promisify(execFile);
const sh = (args: string[]) => run('bash', [join(REPO, 'install.sh'), ...args], { cwd: REPO, timeout: 60_000 });

it('install.sh installs and uninstalls through the admp CLI (--no-docker)', async (t) => {
  if (!requireBinaries(t, ['bash'])) return;
  const c = copyCheckout();
  try {
    const pristine = treeBytes(c.dir);
    const dry = await sh(['--mailcow-dir', c.dir, '--domain', 'agents.example.com', '--dry-run']);
    assert.match(dry.stdout, /^\+\+\+ b\/docker-compose\.override\.yml$/m);
    assert.deepEqual(treeBytes(c.dir), pristine);

    const inst = await sh([
      '--mailcow-dir',
      c.dir,
      '--domain',
      'agents.example.com',
      '--mode',
      'lmtp',
      '--no-docker',
      '--yes',
      '--json',
    ]);
    const outcome = JSON.parse(inst.stdout) as { changedFiles: string[]; pending: string[] };
    assert.ok(outcome.changedFiles.includes(STATE_FILE));
    assert.deepEqual(outcome.pending, ['relay domain agents.example.com']);

    await assert.rejects(
      sh(['--mailcow-dir', c.dir, '--domain', 'agents.example.com', '--no-docker']),
      /not a terminal: pass --yes/,
    );
    await assert.rejects(
      sh(['--mailcow-dir', c.dir, '--domain', 'Not A Domain', '--no-docker', '--yes']),
      /is not a lower-case domain name|not a lower-case/,
    );

    await sh(['uninstall', '--mailcow-dir', c.dir, '--no-docker', '--yes']);
    assert.equal(existsSync(join(c.dir, STATE_FILE)), false);
    assert.deepEqual(treeBytes(c.dir), pristine);
  } finally {
    c.remove();
  }
});
