// `admp install` and `admp uninstall`: attach the bridge to a mailcow-dockerized checkout
// and take it out again (install.sh checks prerequisites and calls these).
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';
import { InvalidArgumentError, type Command } from 'commander';
import { composeUp } from '../installer/compose-cli.js';
import { dockerEngine } from '../installer/docker-engine.js';
import { InstallError } from '../installer/install-error.js';
import type { Mode } from '../installer/install-state.js';
import { mailcowApi } from '../installer/mailcow-api.js';
import { runInstall, runUninstall, type Deps, type Outcome, type RunArgs } from '../installer/run.js';

const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Common {
  mailcowDir: string;
  apiKey?: string;
  apiUrl?: string;
  dryRun?: boolean;
  yes?: boolean;
  docker: boolean;
  json?: boolean;
}

function deps(o: Common, hostnameForApi: () => Promise<string>, quiet: boolean): Deps {
  const apiKey = o.apiKey ?? process.env.ADMP_MAILCOW_API_KEY;
  let api: Deps['api'] = null;
  if (apiKey) {
    const lazy = async () => mailcowApi(o.apiUrl ?? (await hostnameForApi()), apiKey);
    api = {
      getDomain: async (d) => (await lazy()).getDomain(d),
      addRelayDomain: async (d) => (await lazy()).addRelayDomain(d),
      deleteDomain: async (d) => (await lazy()).deleteDomain(d),
    };
  }
  return {
    engine: o.docker ? dockerEngine(new Dockerode()) : null, // DOCKER_HOST or /var/run/docker.sock
    composeUp: (info) => composeUp(info.composeCommand, resolve(o.mailcowDir)),
    api,
    out: quiet ? () => undefined : (line) => console.log(line),
    newSecret: () => randomBytes(24).toString('hex'),
    repoDir,
  };
}

/** Shows the plan (dry run), asks, then runs for real; --yes skips the question. */
async function confirmThenRun(o: Common, run: (args: RunArgs, d: Deps) => Promise<Outcome>, d: Deps): Promise<Outcome> {
  const args = { mailcowDir: resolve(o.mailcowDir), dryRun: true };
  if (o.dryRun) return run(args, d);
  if (!o.yes) {
    if (!process.stdin.isTTY)
      throw new InstallError('not a terminal: pass --yes to apply without a question, or --dry-run to see the changes');
    await run(args, d);
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question('Apply these changes? [y/N] ');
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) throw new InstallError('nothing changed (not confirmed)');
  }
  return run({ ...args, dryRun: false }, d);
}

function mode(value: string): Mode {
  if (value !== 'lmtp' && value !== 'both')
    throw new InvalidArgumentError(
      'lmtp or both (README "Install into Mailcow" says why there is no postfilter-only mode)',
    );
  return value;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 20)) throw new InvalidArgumentError("seconds in (0, 20]: under Mailcow's 25 s task_timeout");
  return n;
}

const common = (c: Command): Command =>
  c
    .requiredOption('--mailcow-dir <dir>', 'mailcow-dockerized checkout (where mailcow.conf is)')
    .option(
      '--api-key <key>',
      'Mailcow read-write API key (or env ADMP_MAILCOW_API_KEY); without it you get the relay-domain steps to do by hand',
    )
    .option('--api-url <url>', 'Mailcow API base URL (default https://MAILCOW_HOSTNAME[:HTTPS_PORT])')
    .option('--dry-run', 'print a unified diff of every file and each container step; change nothing')
    .option('--yes', 'apply without asking')
    .option('--no-docker', 'only change files; print the container steps instead of running them')
    .option('--json', 'print the outcome as JSON');

async function apiBase(mailcowDir: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const { inspectCheckout } = await import('../installer/mailcow-checkout.js');
  const read = (f: string) => readFile(resolve(mailcowDir, f), 'utf8').catch(() => null);
  const info = inspectCheckout({
    conf: await read('mailcow.conf'),
    env: await read('.env'),
    compose: await read('docker-compose.yml'),
  });
  return `https://${info.hostname}${info.httpsPort === '443' ? '' : `:${info.httpsPort}`}`;
}

function report(o: Common, outcome: Outcome): void {
  if (o.json) console.log(JSON.stringify(outcome));
}

export function registerInstall(program: Command): void {
  common(
    program
      .command('install')
      .description('attach the ADMP bridge to a Mailcow installation (README "Install into Mailcow")'),
  )
    .requiredOption('--domain <domain>', 'agents domain, e.g. agents.example.com')
    .option(
      '--mode <mode>',
      'both (Rspamd plugin, LMTP for what it did not take) or lmtp (Postfix transport only)',
      mode,
      'both' as Mode,
    )
    .option('--database-url <url>', 'use this PostgreSQL instead of adding the admp-postgres service')
    .option('--image <tag>', 'bridge image (built from compose/Dockerfile when missing)', 'admp-bridge:latest')
    .option('--http-publish <host:port>', 'publish the bridge HTTP API on the host ("" for none)', '127.0.0.1:8080')
    .option('--bridge-timeout <seconds>', 'Rspamd plugin HTTP timeout', seconds, 10)
    .action(
      async (
        o: Common & {
          domain: string;
          mode: Mode;
          databaseUrl?: string;
          image: string;
          httpPublish: string;
          bridgeTimeout: number;
        },
      ) => {
        const d = deps(o, () => apiBase(o.mailcowDir), Boolean(o.json));
        const options = {
          domain: o.domain.toLowerCase(),
          mode: o.mode,
          databaseUrl: o.databaseUrl ?? null,
          image: o.image,
          httpPublish: o.httpPublish,
          timeoutSec: o.bridgeTimeout,
        };
        report(o, await confirmThenRun(o, (args, dd) => runInstall(args, options, dd), d));
      },
    );
  common(program.command('uninstall').description('remove exactly what `admp install` added')).action(
    async (o: Common) => {
      const d = deps(o, () => apiBase(o.mailcowDir), Boolean(o.json));
      report(o, await confirmThenRun(o, runUninstall, d));
    },
  );
}
