// The installer's container steps against a real Docker engine (private dockerd, see
// test/helpers/dockerd.ts): stand-ins for postfix-mailcow and rspamd-mailcow carry Mailcow's
// Compose labels and bind mounts, and their `postfix`, `postmap` and `rspamadm` record each
// call in one shared log, so the exact sequence can be asserted. Compose itself cannot run
// here (no image pulls, no bridge networks); its `up` is the one step a test double takes,
// and it creates the bridge container through the Engine API with Compose's labels.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type Dockerode from 'dockerode';
import { dockerEngine } from '../../src/installer/docker-engine.js';
import { BRIDGE_SERVICE, POSTFIX_SERVICE, RSPAMD_SERVICE } from '../../src/installer/layout.js';
import { importRootfs, startDockerd, type TestDockerd } from '../helpers/dockerd.js';
import { requireBinaries } from '../helpers/requires.js';
import { copyCheckout, fileDeps, install, treeBytes, uninstall } from './checkout.js';

const PROJECT = 'mailcowdockerized';
const IMAGE = 'admp-standin:1';
const BINARIES = ['dockerd', 'containerd', 'runc', 'busybox', 'tar'];
// What install asks of the containers, in order (each stand-in logs the command it ran).
const INSTALL_CALLS = [
  'rspamd-mailcow: rspamadm configtest',
  'postfix-mailcow: postmap -q postmaster@agents.example.com pcre:/opt/postfix/conf/custom_transport.pcre',
  'postfix-mailcow: postfix reload',
  'rspamd-mailcow: start',
  'compose: up -d admp-bridge-mailcow admp-postgres-mailcow',
];
const APPLETS = ['sh', 'sleep', 'echo', 'cat', 'awk', 'tr', 'grep', 'printf', 'test', '['];

// Each stand-in logs "<service>: <command line>" to /rec/calls.log (a shared bind mount).
const log = (what: string): string => `printf '%s\\n' "$SERVICE: ${what}" >> /rec/calls.log\n`;
const STANDIN = {
  '/standin': `#!/bin/sh\n${log('start')}trap 'exit 0' TERM\nsleep 100000 &\nwait\n`,
  '/usr/local/bin/postfix': `#!/bin/sh\n${log('postfix $*')}`,
  '/usr/local/bin/rspamadm': `#!/bin/sh\n${log('rspamadm $*')}if [ -n "$CONFIGTEST_FAIL" ]; then echo 'syntax BAD'; exit 1; fi\necho 'syntax OK'\n`,
  // postmap -q KEY pcre:FILE reads the real bind-mounted table, like pcre_table(5) (case-insensitive);
  // mysql: lookups answer from $RELAY_DOMAINS, standing in for Mailcow's relay_domains query.
  '/usr/local/bin/postmap': `#!/bin/sh
${log('postmap $*')}key=$(echo "$2" | tr A-Z a-z)
case "$3" in
  mysql:*) for d in $RELAY_DOMAINS; do [ "$d" = "$key" ] && echo "$d" && exit 0; done; exit 1 ;;
esac
awk -v k="$key" '!/^#/ && NF >= 2 { re = $1; sub(/^\\//, "", re); sub(/\\/$/, "", re); if (k ~ tolower(re)) { $1 = ""; sub(/^ +/, ""); print; found = 1; exit } } END { exit !found }' "\${3#pcre:}"
`,
};

async function standIn(docker: Dockerode, service: string, binds: string[], env: string[]): Promise<void> {
  const c = await docker.createContainer({
    name: `${PROJECT}-${service}-1`, // Compose v2's naming; the installer goes by labels anyway
    Image: IMAGE,
    Cmd: ['/standin'],
    Env: [`SERVICE=${service}`, ...env],
    Labels: { 'com.docker.compose.project': PROJECT, 'com.docker.compose.service': service },
    HostConfig: { Binds: binds, NetworkMode: 'none' },
  });
  await c.start();
}

describe('container steps through dockerode', () => {
  let d: TestDockerd | undefined;
  let startError: unknown;
  before(async () => {
    try {
      d = await startDockerd();
      await importRootfs(d.docker, IMAGE, APPLETS, STANDIN);
      // The bridge image exists, so install does not build (no base image can be pulled here).
      await d.docker.getImage(IMAGE).tag({ repo: 'admp-bridge', tag: 'latest' });
    } catch (err) {
      startError = err; // reported by each test, after requireBinaries had its say
    }
  });
  after(async () => {
    await d?.stop();
  });

  /** A fixture checkout with running stand-ins; returns where the call log is. */
  async function mailcow(
    env: { rspamd?: string[]; postfix?: string[] } = {},
  ): Promise<{ dir: string; calls: () => string[]; remove(): Promise<void> }> {
    const c = copyCheckout();
    const rec = join(c.dir, '..', `${c.dir.split('/').pop()}-rec`);
    mkdirSync(rec);
    writeFileSync(join(rec, 'calls.log'), '');
    const docker = d!.docker;
    await standIn(
      docker,
      POSTFIX_SERVICE,
      [`${c.dir}/data/conf/postfix:/opt/postfix/conf`, `${rec}:/rec`],
      env.postfix ?? [],
    );
    await standIn(
      docker,
      RSPAMD_SERVICE,
      [`${c.dir}/data/conf/rspamd/local.d:/etc/rspamd/local.d`, `${rec}:/rec`],
      env.rspamd ?? [],
    );
    const calls = () => readFileSync(join(rec, 'calls.log'), 'utf8').split('\n').filter(Boolean);
    // Both stand-ins are up once each has logged its start.
    for (let i = 0; calls().length < 2 && i < 100; i++) await new Promise((ok) => setTimeout(ok, 50));
    return {
      dir: c.dir,
      calls,
      async remove() {
        for (const x of await docker.listContainers({
          all: true,
          filters: JSON.stringify({ label: [`com.docker.compose.project=${PROJECT}`] }),
        })) {
          await docker.getContainer(x.Id).remove({ force: true });
        }
        c.remove();
        rmSync(rec, { recursive: true, force: true });
      },
    };
  }

  /** Runs `body` on a fresh checkout with running stand-ins (skipped without the Docker binaries), then removes them. */
  async function withMailcow(
    t: TestContext,
    env: Parameters<typeof mailcow>[0],
    body: (
      m: Awaited<ReturnType<typeof mailcow>>,
      pristine: ReturnType<typeof treeBytes>,
      append: (line: string) => void,
    ) => Promise<void>,
  ): Promise<void> {
    if (!requireBinaries(t, BINARIES)) return;
    if (!d) throw startError;
    const m = await mailcow(env);
    try {
      const append = (l: string) =>
        writeFileSync(join(m.dir, '..', `${m.dir.split('/').pop()}-rec`, 'calls.log'), `${l}\n`, { flag: 'a' });
      await body(m, treeBytes(m.dir), append);
    } finally {
      await m.remove();
    }
  }

  /** Deps on the real engine; compose up is the test double described at the top. */
  function engineDeps(recLog: (line: string) => void, failUp = false) {
    const docker = d!.docker;
    return fileDeps(null, {
      engine: dockerEngine(docker),
      composeUp: () => async (services) => {
        recLog(`compose: up -d ${services.join(' ')}`);
        if (failUp) throw new Error('compose up failed (simulated: no registry)');
        const c = await docker.createContainer({
          Image: 'admp-bridge:latest',
          Cmd: ['sh', '-c', "trap 'exit 0' TERM; sleep 100000 & wait"],
          Labels: { 'com.docker.compose.project': PROJECT, 'com.docker.compose.service': BRIDGE_SERVICE },
          HostConfig: { NetworkMode: 'none' },
        });
        await c.start();
      },
    });
  }

  it('install runs configtest, postmap check, reload, restart, up in that order; again: nothing; uninstall undoes it', (t) =>
    withMailcow(t, { postfix: ['RELAY_DOMAINS=agents.example.com'] }, async (m, pristine, append) => {
      const r = engineDeps(append);
      const started = Date.now();
      const out = await install(m.dir, r.deps);
      assert.deepEqual(m.calls().slice(2), [
        ...INSTALL_CALLS,
        'postfix-mailcow: postmap -q agents.example.com mysql:/opt/postfix/conf/sql/mysql_virtual_relay_domain_maps.cf',
      ]);
      assert.deepEqual(out.pending, [], 'the relay domain was found through Postfix');
      assert.ok(
        r.lines.includes(
          '[4/4] build the bridge image if missing, then compose up -d admp-bridge-mailcow (and admp-postgres-mailcow)',
        ),
        r.lines.join('\n'),
      );
      assert.ok(Date.now() - started < 30_000);

      const n = m.calls().length;
      const again = await install(m.dir, engineDeps(append).deps);
      assert.deepEqual(again.actions, []);
      assert.deepEqual(
        m
          .calls()
          .slice(n)
          .filter((l) => !l.includes('mysql:')),
        [],
        'no reload, restart or up the second time',
      );

      const k = m.calls().length;
      await uninstall(m.dir, engineDeps(append).deps);
      assert.deepEqual(m.calls().slice(k), ['postfix-mailcow: postfix reload', 'rspamd-mailcow: start']);
      const bridges = await d!.docker.listContainers({
        all: true,
        filters: JSON.stringify({ label: [`com.docker.compose.service=${BRIDGE_SERVICE}`] }),
      });
      assert.equal(bridges.length, 0, 'the bridge container is gone');
      assert.deepEqual(treeBytes(m.dir), pristine);
    }));

  it('a failing rspamadm configtest rolls back before anything is reloaded or restarted', (t) =>
    withMailcow(t, { rspamd: ['CONFIGTEST_FAIL=1'] }, async (m, pristine) => {
      const r = engineDeps(() => undefined);
      await assert.rejects(
        install(m.dir, r.deps),
        /rspamadm configtest in mailcowdockerized-rspamd-mailcow-1 failed \(exit 1\): syntax BAD/,
      );
      assert.deepEqual(m.calls().slice(2), ['rspamd-mailcow: rspamadm configtest']);
      assert.deepEqual(treeBytes(m.dir), pristine);
    }));

  it('a failure after reload and restart puts the files back and makes Postfix and Rspamd read them again', (t) =>
    withMailcow(t, {}, async (m, pristine, append) => {
      const r = engineDeps(append, true);
      await assert.rejects(install(m.dir, r.deps), /compose up failed/);
      assert.deepEqual(m.calls().slice(2), [
        ...INSTALL_CALLS,
        'postfix-mailcow: postfix reload',
        'rspamd-mailcow: start',
      ]);
      assert.deepEqual(treeBytes(m.dir), pristine);
    }));

  it('a missing Mailcow container is a clear error and changes nothing', async (t) => {
    if (!requireBinaries(t, BINARIES)) return;
    if (!d) throw startError;
    const c = copyCheckout();
    try {
      const pristine = treeBytes(c.dir);
      await assert.rejects(
        install(c.dir, engineDeps(() => undefined).deps),
        /no running container for rspamd-mailcow in Compose project mailcowdockerized/,
      );
      assert.deepEqual(treeBytes(c.dir), pristine);
    } finally {
      c.remove();
    }
  });
});
