// install.sh end to end without Docker: prerequisites checked, hand-over to `admp install`
// and `admp uninstall` through the real CLI, and the checkout back to its original bytes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { it, type TestContext } from 'node:test';
import semver from 'semver';
import { STATE_FILE } from '../../src/installer/layout.js';
import { nodeBinDir } from '../helpers/images.js';
import { requireBinaries, requirePackage } from '../helpers/requires.js';
import { REPO, copyCheckout, treeBytes } from './checkout.js';

const run = promisify(execFile);
let path = process.env.PATH ?? '';
const sh = (args: string[]) =>
  run('bash', [join(REPO, 'install.sh'), ...args], { cwd: REPO, timeout: 60_000, env: { ...process.env, PATH: path } });

/** install.sh refuses Node below the floor; under ADMP_E2E=1 an older Node is replaced by Node 26 from npm. */
async function nodeAtFloor(t: TestContext): Promise<boolean> {
  const floor = semver.minVersion(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).engines.node)!;
  if (semver.gte(process.versions.node, floor)) return true;
  if (process.env.ADMP_E2E !== '1') return requirePackage(t, false, `install.sh needs Node ${floor} or newer`);
  path = `${await nodeBinDir()}${delimiter}${path}`;
  return true;
}

it('install.sh refuses a Node below the floor, naming it', async (t) => {
  if (!requireBinaries(t, ['bash'])) return;
  const old = mkdtempSync(join(tmpdir(), 'admp-oldnode-'));
  try {
    writeFileSync(join(old, 'node'), '#!/bin/sh\n[ "$1" = --version ] && echo v20.20.2 && exit 0\nexit 1\n', {
      mode: 0o755,
    });
    const r = await run('bash', [join(REPO, 'install.sh'), '--mailcow-dir', old, '--no-docker'], {
      cwd: REPO,
      env: { ...process.env, PATH: `${old}${delimiter}${process.env.PATH}` },
    }).catch((e: { stderr: string; code: number }) => e);
    assert.equal((r as { code: number }).code, 1);
    assert.match((r as { stderr: string }).stderr, /node v20\.20\.2 is too old: 22\.13 or newer is needed/);
  } finally {
    rmSync(old, { recursive: true, force: true });
  }
});

it('install.sh installs and uninstalls through the admp CLI (--no-docker)', async (t) => {
  if (!requireBinaries(t, ['bash'])) return;
  if (!(await nodeAtFloor(t))) return;
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
