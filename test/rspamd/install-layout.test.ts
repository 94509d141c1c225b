// The shipped rspamd and Postfix files, installed the way the installer does into a copy of
// Mailcow's data/conf tree: rspamd accepts them, the module loads, the `discard` action joins
// Mailcow's thresholds, and a bad configuration disables only the module. The pcre block routes
// the agents domain and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinaries } from '../helpers/requires.js';
import { startDns } from '../helpers/dns.js';
import {
  installPlugin,
  renderBridgeConfig,
  rspamadm,
  rspamadmDir,
  startRspamd,
  writeSafetyConfig,
} from '../helpers/rspamd.js';
import { renderTransportBlock } from '../helpers/postfix.js';
import { FIXTURE } from '../installer/checkout.js';

const execFileAsync = promisify(execFile);
const MAILCOW_RSPAMD = join(FIXTURE, 'data', 'conf', 'rspamd');
const GOOD = renderBridgeConfig({
  url: 'http://127.0.0.1:9/ingress/rspamd',
  token: 'test-ingress-token-0123456789',
  domain: 'agents.example.com',
  timeout: 10,
});

/** rspamadm output for a Mailcow config tree with our files installed; `pluginConfig` as in installPlugin. */
async function inMailcowLayout(pluginConfig: string | null, run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await rspamadmDir((local) => {
    cpSync(MAILCOW_RSPAMD, local, { recursive: true });
    // Mailcow's own worker files bind to compose host names; loopback ones replace them, and
    // fuzzy_check (which resolves through the system resolver) is switched off.
    writeSafetyConfig(local, { normal: 1, proxy: 2, controller: 3 }, '127.0.0.1:9');
    installPlugin(local, pluginConfig);
  });
  try {
    await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const modules = async (dir: string): Promise<{ enabled: string[]; unconfigured: string[]; output: string }> => {
  const { output } = await rspamadm(dir, ['configdump', '-m']);
  const list = (label: string) =>
    (new RegExp(`^${label}: (.*)$`, 'm').exec(output)?.[1] ?? '').split(', ').filter(Boolean);
  return { enabled: list('Modules enabled'), unconfigured: list('Modules disabled \\(unconfigured\\)'), output };
};

test('the shipped rspamd files in a Mailcow layout', async (t) => {
  if (!requireBinaries(t, ['rspamd', 'rspamadm'])) return;

  await t.test(
    "configtest passes, agents_bridge loads with the filled-in settings, discard joins Mailcow's thresholds",
    async () => {
      await inMailcowLayout(GOOD, async (dir) => {
        const test = await rspamadm(dir, ['configtest']);
        assert.equal(test.code, 0, test.output);
        assert.match(test.output, /syntax OK/);
        assert.doesNotMatch(test.output, /agents_bridge/);
        const m = await modules(dir);
        assert.ok(m.enabled.includes('agents_bridge'), m.output);
        const section = (await rspamadm(dir, ['configdump', 'agents_bridge'])).output;
        assert.match(section, /url = "http:\/\/127\.0\.0\.1:9\/ingress\/rspamd";/);
        assert.match(section, /domains \[\s*"agents\.example\.com",\s*\]/);
        const actions = (await rspamadm(dir, ['configdump', 'actions'])).output;
        assert.match(actions, /discard \{\s*flags \[\s*"no_threshold",\s*\]\s*\}/);
        for (const kept of ['reject = 15;', 'add_header = 8;', 'greylist = 7;'])
          assert.ok(actions.includes(kept), actions);
      });
    },
  );

  const bad: [string, string | null, RegExp][] = [
    ['no url', GOOD.replace(/^url = .*$/m, ''), /option "url" is required/],
    [
      'placeholders left unfilled',
      readFileSync(new URL('../../rspamd/agents_bridge.conf', import.meta.url), 'utf8'),
      /still holds an installer placeholder/,
    ],
    ['the settings file missing (only the rspamd.conf.local block)', null, /option "url" is required/],
    ['a misspelt option', `${GOOD}\ndomain = "agents.example.com";\n`, /unknown option "domain"/],
    [
      'a timeout that is not a duration',
      GOOD.replace(/^timeout = .*$/m, 'timeout = "soon";'),
      /option "timeout" must be/,
    ],
  ];
  for (const [name, config, reason] of bad) {
    await t.test(`${name}: rspamd's config still loads, only agents_bridge is disabled`, async () => {
      await inMailcowLayout(config, async (dir) => {
        const test = await rspamadm(dir, ['configtest']);
        assert.equal(test.code, 0, test.output);
        assert.match(test.output, /syntax OK/);
        assert.match(test.output, /agents_bridge: bad configuration, module disabled: /);
        assert.match(test.output, reason);
        const m = await modules(dir);
        assert.ok(!m.enabled.includes('agents_bridge'), m.output);
        assert.ok(m.unconfigured.includes('agents_bridge'), m.output);
        assert.ok(m.enabled.includes('dkim') && m.enabled.includes('milter_headers'), m.output);
      });
    });
  }

  await t.test('a running rspamd with a bad agents_bridge config keeps scanning (no bridge symbol)', async () => {
    const dns = await startDns();
    t.after(() => dns.stop());
    const rspamd = await startRspamd({ dns: dns.server, pluginConfig: GOOD.replace(/^url = .*$/m, '') });
    t.after(() => rspamd.stop());
    const res = await fetch(`http://127.0.0.1:${rspamd.ports.normal}/checkv2`, {
      method: 'POST',
      headers: {
        From: 'alice@sender.example',
        Rcpt: 'storage.pg@agents.example.com',
        IP: '1.2.3.4',
        Helo: 'mail.sender.example',
      },
      body: 'From: <alice@sender.example>\r\nTo: <storage.pg@agents.example.com>\r\nSubject: hi\r\n\r\nhello\r\n',
    });
    const verdict = (await res.json()) as { action: string; symbols: Record<string, unknown> };
    assert.equal(res.status, 200);
    assert.ok(!('AGENTS_BRIDGE' in verdict.symbols), JSON.stringify(verdict.symbols));
    assert.ok(!['discard', 'soft reject'].includes(verdict.action), verdict.action);
    assert.match(rspamd.log(), /agents_bridge: bad configuration, module disabled: option "url" is required/);
  });
});

test('the custom_transport.pcre block routes exactly the agents domain to the LMTP bridge', async (t) => {
  if (!requireBinaries(t, ['postmap'])) return;
  const dir = mkdtempSync(join(tmpdir(), 'admp-pcre-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'main.cf'), 'compatibility_level = 3.6\n');
  const block = renderTransportBlock('agents.example.com');
  assert.match(block, /^# >>> admp-bridge BEGIN/m);
  assert.match(block, /^# <<< admp-bridge END$/m);
  writeFileSync(join(dir, 'custom_transport.pcre'), block);
  const lookup = async (address: string): Promise<string | null> => {
    try {
      return (
        await execFileAsync('postmap', ['-c', dir, '-q', address, `pcre:${join(dir, 'custom_transport.pcre')}`])
      ).stdout.trim();
    } catch (err) {
      if ((err as { code?: number }).code === 1) return null; // not found
      throw err;
    }
  };
  assert.equal(await lookup('storage.pg@agents.example.com'), 'lmtp:inet:admp-bridge:2526');
  assert.equal(await lookup('Storage.PG@AGENTS.Example.COM'), 'lmtp:inet:admp-bridge:2526');
  for (const other of [
    'bob@example.com',
    'x@xagents.example.com',
    'x@sub.agents.example.com',
    'x@agents.example.com.evil.test',
    'x@agentsXexample.com',
  ]) {
    assert.equal(await lookup(other), null, other);
  }
});
