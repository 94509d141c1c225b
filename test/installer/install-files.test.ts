// File-level install/uninstall on copies of the Mailcow fixture (--no-docker): each mode,
// idempotence, byte-identical uninstall, the admin's own override, refusals, dry run.
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, lstatSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  OVERRIDE_FILE,
  RSPAMD_ACTIONS_FILE,
  RSPAMD_CONF_FILE,
  RSPAMD_LOADER_FILE,
  RSPAMD_PLUGIN_FILE,
  STATE_FILE,
  TRANSPORT_FILE,
} from '../../src/installer/layout.js';
import type { Mode } from '../../src/installer/install-state.js';
import { copyCheckout, fileDeps, install, read, treeBytes, uninstall } from './checkout.js';

const RSPAMD_FILES = [RSPAMD_PLUGIN_FILE, RSPAMD_CONF_FILE, RSPAMD_LOADER_FILE, RSPAMD_ACTIONS_FILE];
const ADMIN_OVERRIDE = `# my own additions (kept by admp install)
services:
    # the exporter from helper-scripts
    prometheus-exporter-mailcow:
      image: ghcr.io/mailcow/prometheus-exporter:2
      ports:
        - "9099:9099"
      networks:
        mailcow-network:
          aliases:
            - prometheus-exporter

    nginx-mailcow:
      environment:
        - EXTRA=1   # tweak
`;

async function withCheckout(fn: (dir: string) => Promise<void>): Promise<void> {
  const c = copyCheckout();
  try {
    await fn(c.dir);
  } finally {
    c.remove();
  }
}

describe('admp install --no-docker on a Mailcow checkout', () => {
  for (const mode of ['lmtp', 'both'] as Mode[]) {
    it(`mode ${mode}: installs, is a no-op the second time, and uninstalls to identical bytes`, () =>
      withCheckout(async (dir) => {
        // The real layout: .env is a symlink to mailcow.conf, which the installer reads through.
        assert.ok(lstatSync(join(dir, '.env')).isSymbolicLink());
        const pristine = treeBytes(dir);
        assert.equal(pristine['.env'], 'symlink:mailcow.conf');
        const r = fileDeps();
        const first = await install(dir, r.deps, { mode });
        const expected = [OVERRIDE_FILE, TRANSPORT_FILE, ...(mode === 'lmtp' ? [] : RSPAMD_FILES), STATE_FILE];
        assert.deepEqual([...first.changedFiles].sort(), [...expected].sort());
        assert.ok(read(dir, TRANSPORT_FILE).includes('lmtp:inet:admp-bridge:2526'));
        assert.equal(existsSync(join(dir, RSPAMD_PLUGIN_FILE)), mode !== 'lmtp');
        const override = read(dir, OVERRIDE_FILE);
        assert.match(override, /ADMP_LMTP_LISTEN: "0\.0\.0\.0:2526"/);
        // Only the managed files differ from the fixture.
        const after = treeBytes(dir);
        const changed = Object.keys({ ...pristine, ...after })
          .filter((p) => pristine[p] !== after[p])
          .sort();
        assert.deepEqual(changed, [...expected].sort());
        assert.ok(
          r.lines.some((l) => l.startsWith('skipped (--no-docker)')),
          'says what it skipped',
        );

        const r2 = fileDeps();
        const second = await install(dir, r2.deps, { mode });
        assert.deepEqual(second.changedFiles, []);
        assert.deepEqual(treeBytes(dir), after, 'second install is byte-identical');
        assert.ok(r2.lines.includes('files: already installed, nothing to change'));

        const u = await uninstall(dir, fileDeps().deps);
        assert.deepEqual([...u.changedFiles].sort(), [...expected].sort());
        assert.deepEqual(treeBytes(dir), pristine, 'uninstall restores every byte');
      }));
  }

  it("keeps the admin's override (services, comments, order, indentation) through install and uninstall", () =>
    withCheckout(async (dir) => {
      writeFileSync(join(dir, OVERRIDE_FILE), ADMIN_OVERRIDE);
      const pristine = treeBytes(dir);
      await install(dir, fileDeps().deps);
      const merged = read(dir, OVERRIDE_FILE);
      const mine = parse(ADMIN_OVERRIDE) as { services: Record<string, unknown> };
      const now = parse(merged) as { services: Record<string, unknown>; volumes: Record<string, unknown> };
      assert.deepEqual(Object.keys(now.services), [
        'prometheus-exporter-mailcow',
        'nginx-mailcow',
        'admp-bridge-mailcow',
        'admp-postgres-mailcow',
      ]);
      for (const [name, def] of Object.entries(mine.services)) assert.deepEqual(now.services[name], def, name);
      for (const comment of [
        '# my own additions (kept by admp install)',
        '# the exporter from helper-scripts',
        '# tweak',
      ])
        assert.ok(merged.includes(comment), comment);
      assert.deepEqual(now.volumes, { 'admp-bridge-vol-1': {}, 'admp-pg-vol-1': {} });
      assert.doesNotMatch(merged, /^networks:/m, 'the Mailcow network is never redeclared');
      await install(dir, fileDeps().deps);
      assert.equal(read(dir, OVERRIDE_FILE), merged, 'second install leaves it byte-identical');
      await uninstall(dir, fileDeps().deps);
      assert.deepEqual(treeBytes(dir), pristine);
    }));

  it('after someone else edits a file, uninstall cuts out only its own part', () =>
    withCheckout(async (dir) => {
      appendFileSync(join(dir, TRANSPORT_FILE), '/^old@example\\.org$/ smtp:[relay.example.org]\n');
      await install(dir, fileDeps().deps);
      appendFileSync(join(dir, TRANSPORT_FILE), '/^new@example\\.org$/ smtp:[relay.example.org]\n');
      const withOurs = read(dir, OVERRIDE_FILE);
      writeFileSync(join(dir, OVERRIDE_FILE), `${withOurs}# a comment added later\n`);
      await uninstall(dir, fileDeps().deps);
      assert.equal(
        read(dir, TRANSPORT_FILE),
        '/^old@example\\.org$/ smtp:[relay.example.org]\n/^new@example\\.org$/ smtp:[relay.example.org]\n',
      );
      assert.equal(existsSync(join(dir, STATE_FILE)), false);
      const rest = read(dir, OVERRIDE_FILE);
      assert.doesNotMatch(rest, /admp/);
      assert.match(rest, /# a comment added later/);
    }));

  it('changing the mode takes out what the new mode does not need', () =>
    withCheckout(async (dir) => {
      const pristine = treeBytes(dir);
      await install(dir, fileDeps().deps, { mode: 'both' });
      const token = JSON.parse(read(dir, STATE_FILE)).secrets.ingressToken as string;
      const r = await install(dir, fileDeps().deps, { mode: 'lmtp' });
      for (const f of RSPAMD_FILES) assert.equal(existsSync(join(dir, f)), false, f);
      assert.ok(r.changedFiles.includes(RSPAMD_PLUGIN_FILE));
      assert.equal(JSON.parse(read(dir, STATE_FILE)).secrets.ingressToken, token, 'secrets are kept across reinstalls');
      await uninstall(dir, fileDeps().deps);
      assert.deepEqual(treeBytes(dir), pristine);
    }));

  it('--dry-run prints a unified diff of every file and the container steps, and changes nothing', () =>
    withCheckout(async (dir) => {
      const pristine = treeBytes(dir);
      const r = fileDeps();
      await install(dir, r.deps, {}, true);
      assert.deepEqual(treeBytes(dir), pristine);
      const text = r.lines.join('\n');
      assert.match(text, /^--- \/dev\/null\n\+\+\+ b\/docker-compose\.override\.yml\n@@ -0,0 \+1,\d+ @@\n\+services:/m);
      assert.match(
        text,
        /^--- a\/data\/conf\/postfix\/custom_transport\.pcre\n\+\+\+ b\/data\/conf\/postfix\/custom_transport\.pcre\n/m,
      );
      assert.match(text, /^\+\/@agents\\\.example\\\.com\$\/ +lmtp:inet:admp-bridge:2526$/m);
      assert.match(text, /^would run: rspamadm configtest in mailcowdockerized\/rspamd-mailcow$/m);
      assert.match(text, /^would run: postfix reload in mailcowdockerized\/postfix-mailcow$/m);
      assert.match(text, /dry run: nothing was changed/);
      await install(dir, fileDeps().deps);
      const installed = treeBytes(dir);
      const u = fileDeps();
      await uninstall(dir, u.deps, true);
      assert.deepEqual(treeBytes(dir), installed);
      assert.match(u.lines.join('\n'), /^\+\+\+ \/dev\/null$/m);
    }));

  describe('refuses with a clear message and changes nothing', () => {
    const refusals: Array<[string, (dir: string) => void, RegExp]> = [
      [
        'broken YAML in the override',
        (d) => writeFileSync(join(d, OVERRIDE_FILE), 'services:\n  x: [1, 2\n'),
        /docker-compose\.override\.yml: not valid YAML \(line \d+\)/,
      ],
      [
        'an override whose services is a list',
        (d) => writeFileSync(join(d, OVERRIDE_FILE), 'services:\n  - a\n'),
        /"services" is not a mapping/,
      ],
      // .env, a symlink to mailcow.conf (copyCheckout), then dangles: the snapshot records the link.
      ['no mailcow.conf', (d) => rmSync(join(d, 'mailcow.conf')), /not a Mailcow checkout: mailcow\.conf is missing/],
      [
        'a dangling .env',
        (d) => {
          rmSync(join(d, '.env'));
          symlinkSync('mailcow.conf.old', join(d, '.env'));
        },
        /\.env is a symlink to mailcow\.conf\.old, which does not exist; in a Mailcow checkout it links to mailcow\.conf/,
      ],
      [
        'a docker-compose.yml without Mailcow services',
        (d) => writeFileSync(join(d, 'docker-compose.yml'), 'services:\n  web:\n    image: nginx\n'),
        /not a Mailcow checkout: no service postfix-mailcow/,
      ],
      [
        'COMPOSE_FILE hiding the override',
        (d) => appendFileSync(join(d, 'mailcow.conf'), 'COMPOSE_FILE=docker-compose.yml\n'),
        /COMPOSE_FILE=docker-compose\.yml hides docker-compose\.override\.yml/,
      ],
      [
        'a half block in custom_transport.pcre',
        (d) => writeFileSync(join(d, TRANSPORT_FILE), '# >>> admp-bridge BEGIN\n/x/ smtp:\n'),
        /custom_transport\.pcre: "admp-bridge BEGIN" marker without END/,
      ],
      ['--domain equal to MAILCOW_HOSTNAME', () => undefined, /--domain must differ from MAILCOW_HOSTNAME/],
    ];
    for (const [what, breakIt, message] of refusals) {
      it(what, () =>
        withCheckout(async (dir) => {
          breakIt(dir);
          const before = treeBytes(dir);
          const domain = what.startsWith('--domain') ? 'mail.example.com' : 'agents.example.com';
          await assert.rejects(install(dir, fileDeps().deps, { domain }), message);
          assert.deepEqual(treeBytes(dir), before);
        }),
      );
    }

    it('COMPOSE_FILE that lists the override is accepted', () =>
      withCheckout(async (dir) => {
        appendFileSync(join(dir, 'mailcow.conf'), 'COMPOSE_FILE=docker-compose.yml:docker-compose.override.yml\n');
        await install(dir, fileDeps().deps);
        assert.ok(existsSync(join(dir, STATE_FILE)));
      }));

    it('uninstall without an installation', () =>
      withCheckout(async (dir) => {
        await assert.rejects(uninstall(dir, fileDeps().deps), /no ADMP installation found here/);
      }));
  });
});
