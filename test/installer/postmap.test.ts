// The transport block an install writes answers Postfix's own lookup (Debian postfix,
// `postmap -q … pcre:…`, as in research/mailcow.md §2.6) with the bridge's LMTP next hop,
// and leaves other domains, subdomains and look-alikes alone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { it } from 'node:test';
import { TRANSPORT_FILE } from '../../src/installer/layout.js';
import { requireBinaries, requirePackage } from '../helpers/requires.js';
import { copyCheckout, fileDeps, install } from './checkout.js';

const run = promisify(execFile);

async function lookup(configDir: string, table: string, key: string): Promise<string | null> {
  try {
    return (await run('postmap', ['-c', configDir, '-q', key, `pcre:${table}`])).stdout.trim();
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    if (e.code === 1) return null; // not found
    throw new Error(`postmap failed: ${e.stderr}`);
  }
}

it('postmap -q finds the bridge next hop for the agents domain only', async (t) => {
  if (!requireBinaries(t, ['postmap', 'postconf'])) return;
  // postmap needs a main.cf to read; an empty one gives Postfix's defaults.
  const conf = mkdtempSync(join(tmpdir(), 'admp-postmap-'));
  writeFileSync(join(conf, 'main.cf'), '');
  // pcre tables come in Debian's separate postfix-pcre package.
  const pcre = (await run('postconf', ['-c', conf, '-m'])).stdout.split('\n').includes('pcre');
  if (!requirePackage(t, pcre, 'needs postfix-pcre (pcre tables)'))
    return rmSync(conf, { recursive: true, force: true });
  const c = copyCheckout();
  try {
    const table = join(c.dir, TRANSPORT_FILE);
    await install(c.dir, fileDeps().deps, { mode: 'both' });
    assert.equal(await lookup(conf, table, 'x@agents.example.com'), 'lmtp:inet:admp-bridge:2526');
    assert.equal(await lookup(conf, table, 'Some.One@AGENTS.Example.COM'), 'lmtp:inet:admp-bridge:2526');
    for (const other of [
      'x@example.com',
      'x@sub.agents.example.com',
      'x@agentsXexample.com',
      'x@agents.example.com.evil.org',
    ]) {
      assert.equal(await lookup(conf, table, other), null, other);
    }
  } finally {
    c.remove();
    rmSync(conf, { recursive: true, force: true });
  }
});
