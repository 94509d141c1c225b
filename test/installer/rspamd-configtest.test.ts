// The Rspamd files an install writes pass a real `rspamadm configtest` (Debian rspamd) with
// Mailcow's own config (the fixture's data/conf/rspamd as LOCAL_CONFDIR): the plugin loads
// from local.d/, registers its symbol with the installed settings, and `discard` is declared
// next to Mailcow's thresholds. A broken install fails configtest, which is what makes the
// installer roll back before Rspamd is restarted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { it } from 'node:test';
import { RSPAMD_CONF_FILE } from '../../src/installer/layout.js';
import { requireBinaries } from '../helpers/requires.js';
import { copyCheckout, fileDeps, install } from './checkout.js';

const run = promisify(execFile);

/**
 * The checkout as the rspamd container sees it, on loopback: Mailcow binds its workers to
 * the host name `rspamd` (itself inside the container), and its fuzzy_check.conf (not in the
 * fixture) would resolve fuzzy servers through the system resolver even in configtest.
 */
function forLoopback(confDir: string): void {
  for (const f of ['worker-normal.inc', 'worker-proxy.inc']) {
    const p = join(confDir, 'override.d', f);
    writeFileSync(p, readFileSync(p, 'utf8').replaceAll('rspamd:', '127.0.0.1:'));
  }
  writeFileSync(join(confDir, 'local.d', 'fuzzy_check.conf'), 'enabled = false;\n');
}

async function rspamadm(dir: string, args: string[]): Promise<{ code: number; output: string }> {
  const vars = [
    `--var=LOCAL_CONFDIR=${join(dir, 'data/conf/rspamd')}`,
    ...['DBDIR', 'RUNDIR', 'LOGDIR'].map((v) => `--var=${v}=${join(dir, 'rspamd-var')}`),
  ];
  try {
    const r = await run('rspamadm', [...vars, ...args, '-c', '/etc/rspamd/rspamd.conf'], {
      timeout: 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, output: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

it('installed Rspamd files pass rspamadm configtest and load the plugin', async (t) => {
  if (!requireBinaries(t, ['rspamadm'])) return;
  const c = copyCheckout();
  try {
    forLoopback(join(c.dir, 'data/conf/rspamd'));
    mkdirSync(join(c.dir, 'rspamd-var'));
    const before = await rspamadm(c.dir, ['configdump', '-d']);
    assert.doesNotMatch(before.output, /AGENTS_BRIDGE/, 'no symbol before install');

    await install(c.dir, fileDeps().deps, { mode: 'both' });
    const test = await rspamadm(c.dir, ['configtest']);
    assert.equal(test.code, 0, test.output);
    assert.match(test.output, /syntax OK/);
    assert.doesNotMatch(test.output, /agents_bridge|admp-bridge/, 'no plugin complaints');

    const symbols = await rspamadm(c.dir, ['configdump', '-d']);
    assert.match(
      symbols.output,
      /AGENTS_BRIDGE \{\n\s+score = 0\.0;\n\s+type = "postfilter";/,
      'the plugin registered its postfilter',
    );
    const actions = await rspamadm(c.dir, ['configdump', 'actions']);
    assert.match(actions.output, /discard \{\n\s+flags \[\n\s+"no_threshold",/);
    assert.match(actions.output, /reject = 15;/, "Mailcow's thresholds stay");

    // A broken settings file must fail configtest (the installer's gate before restarting Rspamd).
    writeFileSync(join(c.dir, RSPAMD_CONF_FILE), 'url = "http://admp-bridge:8080/ingress/rspamd"\ntoken = {\n');
    const broken = await rspamadm(c.dir, ['configtest']);
    assert.notEqual(broken.code, 0, broken.output);
    assert.match(broken.output, /admp-bridge: local\.d\/agents_bridge\.conf/);
  } finally {
    c.remove();
  }
});
