// README "Install into Mailcow", run for real on a mini-Mailcow of real parts: a private Docker
// engine in a network namespace of its own (its bridge networks and ports exist only there),
// Mailcow's own docker-compose.yml starting postfix-mailcow and rspamd-mailcow (Debian's Postfix
// and Rspamd, test/images) with their labels, mounts and fixed address on mailcow-network, an
// unbound-mailcow stand-in serving the partner's DKIM key. The admin's commands are read from
// the README (test/helpers/readme-commands.ts) and run as typed, in a terminal that answers the
// installer's question. In order: the README's dry run changes nothing; its install (container
// steps, Compose v2 up of the bridge and its PostgreSQL); a DKIM- and agent-signed partner mail
// by SMTP into postfix-mailcow lands exactly once in the bridge's database, in every mode; a
// simulated Mailcow update, then the README's `admp doctor`; the README's backup and restore;
// install again changes nothing (also after Mailcow reset custom_transport.pcre to 0640);
// `docker compose pull` (update.sh) passes with the override; the README's uninstall restores
// every byte, removes the bridge's containers, and Postfix no longer routes the domain.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it, type TestContext } from 'node:test';
import semver from 'semver';
import { parseDocument } from 'yaml';
import { canonicalMessageId } from '../../src/core/signature.js';
import { describe as describeStep } from '../../src/installer/container-steps.js';
import { dockerEngine, type ContainerRef } from '../../src/installer/docker-engine.js';
import {
  BRIDGE_SERVICE,
  POSTFIX_SERVICE,
  POSTGRES_SERVICE,
  RSPAMD_SERVICE,
  STATE_FILE,
  TRANSPORT_FILE,
} from '../../src/installer/layout.js';
import { buildSignedMessage } from '../../src/mail/signed-message.js';
import { signer } from '../helpers/agent-mail.js';
import { startDockerd, type TestDockerd } from '../helpers/dockerd.js';
import {
  buildBridgeImage,
  buildOnMailBase,
  buildPostgresImage,
  MAIL_BASE_IMAGE,
  NODE_IMAGE,
  nodeBinDir,
  nodeImage,
  runToEnd,
} from '../helpers/images.js';
import { dkimKey, signMessage } from '../helpers/mail.js';
import { readmeCommand, readmeCommands } from '../helpers/readme-commands.js';
import { requireBinaries } from '../helpers/requires.js';
import { waitFor } from '../helpers/wait-for.js';
import { copyCheckout, REPO, treeBytes } from './checkout.js';

const run = promisify(execFile);
const BINARIES = ['dockerd', 'containerd', 'runc', 'debootstrap', 'tar', 'ip', 'nsenter', 'docker', 'script'];
const PROJECT = 'mailcowdockerized';
const NETWORK = `${PROJECT}_mailcow-network`;
const AGENTS = 'agents.example.com';
const PARTNER = 'partner.example';
const BRIDGE_IMAGE = 'admp-bridge:latest';
/** Where the README's commands put the Mailcow checkout, and the backup archive. */
const README_MAILCOW_DIR = '/opt/mailcow-dockerized';
const README_ARCHIVE = '/root/admp-backup.tar';

/** Mailcow's image names for postfix-mailcow and rspamd-mailcow, as its docker-compose.yml gives them. */
function mailcowImages(dir: string): { postfix: string; rspamd: string } {
  const doc = parseDocument(readFileSync(join(dir, 'docker-compose.yml'), 'utf8'));
  return {
    postfix: String(doc.getIn(['services', POSTFIX_SERVICE, 'image'])),
    rspamd: String(doc.getIn(['services', RSPAMD_SERVICE, 'image'])),
  };
}

describe('install.sh on a mini-Mailcow of real parts', () => {
  let d: TestDockerd | undefined;
  let ready = false;
  let startError: unknown;
  let path = process.env.PATH ?? '';
  before(async () => {
    try {
      const engine = await startDockerd({ netns: true });
      d = engine;
      const started = Date.now();
      await nodeImage(engine.docker);
      await buildPostgresImage(engine.docker);
      const names = mailcowImages(join(REPO, '..', 'shared', 'fixtures', 'mailcow'));
      await buildOnMailBase(engine.docker, 'postfix-mailcow', names.postfix);
      await buildOnMailBase(engine.docker, 'rspamd-mailcow', names.rspamd);
      await buildBridgeImage(engine.docker, BRIDGE_IMAGE);
      process.stdout.write(`# mini-Mailcow images ready in ${Math.round((Date.now() - started) / 1000)} s\n`);
      const floor = semver.minVersion(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).engines.node)!;
      if (!semver.gte(process.versions.node, floor)) path = `${await nodeBinDir()}${delimiter}${path}`;
      ready = true;
    } catch (err) {
      startError = err;
    }
  });
  after(async () => {
    await d?.stop();
  });

  const engineOrSkip = (t: TestContext): TestDockerd | null => {
    if (!requireBinaries(t, BINARIES)) return null;
    if (!d || !ready) throw startError;
    return d;
  };

  it('install → mail lands once (both, lmtp) → install again: nothing → compose pull → uninstall: every byte back', async (t) => {
    const engine = engineOrSkip(t);
    if (!engine) return;
    const docker = engine.docker;
    const env = { ...process.env, DOCKER_HOST: engine.host, PATH: path };
    const c = copyCheckout();
    const work = mkdtempSync(join(tmpdir(), 'admp-mc-mail-'));
    const started = Date.now();
    const sh = (cmd: string, args: string[], cwd = c.dir) =>
      run(cmd, args, { cwd, env, timeout: 600_000, maxBuffer: 64 << 20 }).catch(
        (e: { stdout?: string; stderr?: string; message: string }) => {
          throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
        },
      );
    const compose = (args: string[]) => sh('docker', ['compose', ...args]);
    const archive = join(work, 'admp-backup.tar');
    /** A README command with the test's checkout and archive paths in place of the README's. */
    const here = (line: string) => line.replaceAll(README_MAILCOW_DIR, c.dir).replaceAll(README_ARCHIVE, archive);
    /** Runs a README command line in the clone (README: `cd admp`) with bash. */
    const typed = (line: string) => sh('bash', ['-c', here(line)], REPO);
    /**
     * Runs a README command line in a terminal (script(1) gives it one), answering `y` to the
     * installer's question as the admin would; its output, or an error with it.
     */
    const confirmed = (line: string) =>
      new Promise<string>((ok, fail) => {
        const child = spawn('script', ['-qec', here(line), '/dev/null'], {
          cwd: REPO,
          env: { ...env, SHELL: '/bin/bash' },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
        child.stderr.on('data', (b: Buffer) => (out += b.toString('utf8')));
        child.stdin.write('y\n'); // kept open: script(1) ends the session at the end of its input
        const timer = setTimeout(() => child.kill('SIGTERM'), 600_000);
        child.on('exit', (code) => {
          clearTimeout(timer);
          child.stdin.end();
          out = out.replace(/\r\n/g, '\n');
          if (code === 0) ok(out);
          else fail(new Error(`${here(line)} exited ${code}:\n${out}`));
        });
      });
    /** The container steps an install or uninstall reported ("[1/4] …"). */
    const steps = (out: string) => [...out.matchAll(/^\[\d+\/\d+\] (.*)$/gm)].map((m) => m[1]!);
    // README "Install into Mailcow": cd into the clone, the dry run, the install.
    const [cdClone, dryRun, installLine, ...moreInstall] = readmeCommands('## Install into Mailcow');
    assert.deepEqual([cdClone, moreInstall], ['cd admp', []], 'the README install block as this test runs it');
    assert.match(dryRun!, /^\.\/install\.sh .*--dry-run$/);
    assert.match(installLine!, /^\.\/install\.sh --mailcow-dir \S+ --domain agents\.example\.com$/);
    const [uninstallLine, ...moreRollback] = readmeCommands('## Rollback');
    assert.deepEqual(moreRollback, []);
    const [backupLine, restoreLine, ...moreBackup] = readmeCommands('### Backup');
    assert.deepEqual(moreBackup, []);
    try {
      // The checkout as generate_config.sh leaves it: .env is a symlink to mailcow.conf (the
      // fixture stores it as a file naming its target).
      rmSync(join(c.dir, '.env'));
      symlinkSync('mailcow.conf', join(c.dir, '.env'));
      await compose(['up', '-d', '--no-deps', POSTFIX_SERVICE, RSPAMD_SERVICE]);
      const names = mailcowImages(c.dir);
      const dkim = dkimKey(PARTNER, 's2025');
      const unbound = await docker.createContainer({
        Image: NODE_IMAGE,
        Cmd: ['node', '--import', 'tsx', 'test/images/dns/serve.ts'],
        WorkingDir: '/w/repo',
        Env: [
          `RECORDS=${JSON.stringify({
            [dkim.dnsName]: dkim.txt,
            [PARTNER]: 'v=spf1 ip4:1.2.3.4 -all',
            [`_dmarc.${PARTNER}`]: 'v=DMARC1; p=reject',
          })}`,
        ],
        HostConfig: { Binds: [`${REPO}:/w/repo:ro`], NetworkMode: NETWORK },
        NetworkingConfig: { EndpointsConfig: { [NETWORK]: { IPAMConfig: { IPv4Address: '172.22.1.254' } } } },
      });
      await unbound.start();
      const eng = dockerEngine(docker);
      const service = async (name: string): Promise<ContainerRef> => {
        const ref = await eng.findService(PROJECT, name);
        assert.ok(ref, `${name} runs`);
        return ref;
      };
      const exec = async (name: string, cmd: string[]) => eng.exec(await service(name), cmd);
      // Rspamd has loaded Mailcow's configuration (a minute or two on a busy machine).
      const rspamdReady = () =>
        waitFor('rspamd-mailcow', 240, async () =>
          (await exec(RSPAMD_SERVICE, ['rspamadm', 'control', 'stat'])).exitCode === 0 ? true : undefined,
        );
      await rspamdReady();
      // A git checkout like Mailcow's (its .gitignore, the rest committed), for update.sh's merge below.
      const git = (args: string[]) => sh('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]);
      copyFileSync(join(c.dir, 'gitignore.upstream'), join(c.dir, '.gitignore'));
      await git(['init', '-q', '-b', 'master']);
      await git(['add', '-A']);
      await git(['commit', '-qm', 'mailcow upstream']);
      const pristine = treeBytes(c.dir);

      // 1. The README's dry run changes nothing; its install (mode both, the default) asks, then applies.
      const dry = await typed(dryRun!);
      assert.match(dry.stdout, /dry run: nothing was changed/);
      assert.deepEqual(treeBytes(c.dir), pristine, 'the dry run changed nothing');
      const first = await confirmed(installLine!);
      assert.match(first, /Apply these changes\? \[y\/N\]/);
      assert.deepEqual(
        steps(first),
        (['rspamd-configtest', 'postfix-reload', 'rspamd-restart', 'bridge-up'] as const).map((a) =>
          describeStep(a, PROJECT),
        ),
        first,
      );
      assert.equal(statSync(join(c.dir, TRANSPORT_FILE)).mode & 0o777, 0o640, "Mailcow's mode is kept");
      for (const s of [BRIDGE_SERVICE, POSTGRES_SERVICE]) await service(s);

      // The bridge's agents, the partner's pinned key and a policy rule, through its own CLI.
      const admp = (args: string[]) => exec(BRIDGE_SERVICE, ['node', 'dist/cli/main.js', ...args]);
      await waitFor('bridge ready', 180, async () =>
        (await admp(['agent', 'list'])).exitCode === 0 ? true : undefined,
      );
      const worker = signer(`worker@${PARTNER}`);
      for (const args of [
        ['agent', 'add', 'bob', '--domain', AGENTS],
        ['key', 'create', `bob@${AGENTS}`],
        ['key', 'import', worker.agent, worker.kid, Buffer.from(worker.publicKey).toString('base64')],
        ['policy', 'add', '--from', `*@${PARTNER}`, '--to', `*@${AGENTS}`],
      ]) {
        const r = await admp(args);
        assert.equal(r.exitCode, 0, `admp ${args.join(' ')}: ${r.output}`);
      }

      const stored = async (messageId: string) => {
        const r = await exec(POSTGRES_SERVICE, [
          'psql',
          '-U',
          'admp',
          '-d',
          'admp',
          '-tAc',
          `SELECT headers->>'road' FROM message WHERE mail_message_id = '${messageId}'`,
        ]);
        assert.equal(r.exitCode, 0, r.output);
        return r.output.trim().split('\n').filter(Boolean);
      };
      let n = 0;
      /** A partner mail into postfix-mailcow:25 (XCLIENT as the partner's MTA); the roads it was stored by. */
      const sendAndStore = async (): Promise<string[]> => {
        const signed = await buildSignedMessage(
          { to: `bob@${AGENTS}`, type: 'task.request', body: { n: ++n } },
          worker,
        );
        writeFileSync(join(work, 'mail.eml'), await signMessage(signed.eml.toString('utf8'), dkim));
        await rspamdReady();
        // While Rspamd restarts, Postfix defers (milter_default_action = tempfail): a sender retries.
        const swaks = await waitFor('250 from postfix-mailcow', 180, async () => {
          const out = await runToEnd(
            docker,
            MAIL_BASE_IMAGE,
            [
              'swaks',
              '--server',
              'postfix',
              '--port',
              '25',
              '--from',
              worker.agent,
              '--to',
              `bob@${AGENTS}`,
              '--helo',
              `mail.${PARTNER}`,
              '--xclient-addr',
              '1.2.3.4',
              '--xclient-name',
              `mail.${PARTNER}`,
              '--data',
              '/m/mail.eml',
              '--hide-informational',
            ],
            { HostConfig: { NetworkMode: NETWORK, Binds: [`${work}:/m:ro`] } },
          );
          if (!/<-\s+250 .*(queued|Ok)/.test(out)) throw new Error(out);
          return out;
        });
        assert.match(swaks, /<-\s+250 .*(queued|Ok)/, swaks);
        const id = canonicalMessageId(signed.messageId);
        await waitFor(`message ${n} stored`, 120, async () => ((await stored(id)).length > 0 ? true : undefined));
        // Exactly once: nothing left in Postfix's queue that could still deliver it again.
        await waitFor('queue empty', 120, async () =>
          /Mail queue is empty/.test((await exec(POSTFIX_SERVICE, ['postqueue', '-p'])).output) ? true : undefined,
        );
        return stored(id);
      };
      assert.deepEqual(await sendAndStore(), ['rspamd'], 'mode both: the Rspamd plugin stored it, once');

      // Mailcow's update.sh: local changes committed, the newer revision merged with -Xtheirs
      // (tracked files replaced); ADMP's files are untracked and ignored, so they stay. Then
      // `admp doctor` (README: after every update) finds files, route and plugin in place.
      assert.equal((await git(['status', '--porcelain'])).stdout, '', 'the install changed no tracked file');
      const updated = ['data/conf/postfix/main.cf', 'docker-compose.yml'];
      await git(['checkout', '-q', '-b', 'next']);
      for (const f of updated) appendFileSync(join(c.dir, f), '# a newer Mailcow revision\n');
      await git(['commit', '-qam', 'mailcow next']);
      await git(['checkout', '-q', 'master']);
      await git(['commit', '-qam', 'Before update']).catch(() => undefined); // nothing to commit
      await git(['merge', '-q', '-Xtheirs', '-Xpatience', 'next']);
      const afterUpdate = treeBytes(c.dir);
      for (const f of updated) pristine[f] = afterUpdate[f]!;
      // The README's command, with the JWKS URL pinned to loopback: agents.example.com is not ours to reach.
      const doctorLine = readmeCommand('### After a Mailcow update', 'npx admp doctor');
      const doctor = await run('bash', ['-c', `${here(doctorLine)} --jwks-address 127.0.0.1`], {
        cwd: REPO,
        env,
        timeout: 300_000,
        maxBuffer: 16 << 20,
      }).catch((e: { stdout: string }) => e); // exits 1: no DNS, JWKS or test mail here
      for (const name of [
        "ADMP's files in the Mailcow checkout are as installed",
        'Postfix routes the agents domain to the bridge',
        'Rspamd has the agents_bridge plugin loaded',
      ])
        assert.ok(
          doctor.stdout.split('\n').some((l: string) => l.startsWith(`PASS  ${name}:`)),
          `${name}:\n${doctor.stdout}`,
        );

      // 2. Mode lmtp (README's options table): Rspamd files go, Postfix delivers to the bridge's LMTP listener.
      const lmtpInstall = `${installLine} --mode lmtp`;
      await confirmed(lmtpInstall);
      assert.deepEqual(await sendAndStore(), ['lmtp'], 'mode lmtp: stored over LMTP, once');

      // 3. README "Backup": admp backup, then admp restore into an empty database gives the same
      // agents, credentials, keys, policy and messages.
      const tables = ['agent', 'agent_credential', 'agent_key', 'policy_rule', 'message', 'message_dedupe'];
      const contents = async () => {
        const sql = tables
          .map(
            (x) => `SELECT '${x}', count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM ${x} t`,
          )
          .join(' UNION ALL ');
        const r = await exec(POSTGRES_SERVICE, ['psql', '-U', 'admp', '-d', 'admp', '-tAc', sql]);
        assert.equal(r.exitCode, 0, r.output);
        const k = await exec(BRIDGE_SERVICE, [
          'sh',
          '-c',
          'cd /app/var/keys && sha256sum *.pem && stat -c "%U %a %n" *.pem',
        ]);
        assert.equal(k.exitCode, 0, k.output);
        return `${r.output.trim()}\n${k.output.trim()}`;
      };
      const before = await contents();
      assert.match(before, /^message\|2\|/m);
      const backup = await typed(backupLine!);
      assert.match(backup.stderr, /database: [\d.]+ MiB in/);
      // An empty database: the PostgreSQL service and its volume made anew.
      await compose(['rm', '--stop', '--force', POSTGRES_SERVICE]);
      await sh('docker', ['volume', 'rm', `${PROJECT}_admp-pg-vol-1`]);
      await compose(['up', '-d', POSTGRES_SERVICE]);
      await waitFor('empty database', 120, async () =>
        (await exec(POSTGRES_SERVICE, ['pg_isready', '-U', 'admp', '-d', 'admp'])).exitCode === 0 ? true : undefined,
      );
      await exec(BRIDGE_SERVICE, ['sh', '-c', 'rm -f /app/var/keys/*.pem']);
      const restore = await typed(restoreLine!);
      assert.match(restore.stderr, /database: restored in/);
      await waitFor('bridge back', 180, async () =>
        (await admp(['agent', 'list'])).exitCode === 0 ? true : undefined,
      );
      assert.equal(await contents(), before);

      // 4. Install again: nothing changes, also after Mailcow's start reset the table to 0640.
      await sh('docker', ['compose', 'restart', POSTFIX_SERVICE]);
      const again = await confirmed(lmtpInstall);
      assert.match(again, /files: already installed, nothing to change/);
      assert.deepEqual(steps(again), [], again);

      // 5. What update.sh runs: `docker compose pull` with the override in place (Mailcow's own
      // images need a registry, so the services of ours are named).
      await compose(['pull', BRIDGE_SERVICE, POSTGRES_SERVICE]);

      // 6. Uninstall: every byte back, the bridge's containers gone, no route to the domain.
      // README "Rollback".
      await confirmed(uninstallLine!);
      assert.deepEqual(treeBytes(c.dir), pristine);
      for (const s of [BRIDGE_SERVICE, POSTGRES_SERVICE]) assert.equal(await eng.findService(PROJECT, s), null, s);
      const route = await exec(POSTFIX_SERVICE, [
        'postmap',
        '-q',
        `bob@${AGENTS}`,
        `pcre:/opt/postfix/conf/custom_transport.pcre`,
      ]);
      assert.notEqual(route.exitCode, 0, `no route left: ${route.output}`);
      assert.ok(!readFileSync(join(c.dir, TRANSPORT_FILE), 'utf8').includes('admp'), STATE_FILE);
      process.stdout.write(
        `# mini-Mailcow run: ${Math.round((Date.now() - started) / 1000)} s (images ${names.postfix}, ${names.rspamd})\n`,
      );
    } finally {
      await compose(['down', '-v', '--remove-orphans']).catch(() => undefined);
      for (const x of await docker.listContainers({ all: true }))
        await docker.getContainer(x.Id).remove({ force: true });
      c.remove();
      rmSync(work, { recursive: true, force: true });
    }
  });
});
