// `admp install` / `admp uninstall`: reads the checkout, plans, shows or applies the plan,
// runs the container steps and the relay-domain step, and rolls everything back when a
// step fails. Effects come in through Deps, so tests drive it with real files, a real
// Docker engine, or none.
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ComposeUp } from './compose-cli.js';
import { describe, manualCommands, runSteps, undoSteps, type StepContext } from './container-steps.js';
import type { Engine } from './docker-engine.js';
import { FileTransaction, readSnapshot } from './file-transaction.js';
import { InstallError } from './install-error.js';
import {
  BRIDGE_SERVICE,
  LMTP_NEXTHOP,
  MAILCOW_COMPOSE,
  MAILCOW_CONF,
  MAILCOW_ENV,
  OVERRIDE_FILE,
  POSTFIX_SERVICE,
  POSTGRES_SERVICE,
  SHIPPED,
  type ShippedName,
} from './layout.js';
import { inspectCheckout, type MailcowInfo } from './mailcow-checkout.js';
import { manualRelaySteps, type MailcowApi } from './mailcow-api.js';
import {
  MANAGED_FILES,
  planInstall,
  planUninstall,
  type ContainerAction,
  type InstallOptions,
  type Plan,
} from './plan.js';
import type { ShippedFiles } from './shipped-files.js';
import { unifiedDiff } from './unified-diff.js';

/** Files of this repository the bridge image is built from (compose/Dockerfile). */
export const IMAGE_CONTEXT = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'bin',
  'src',
  'migrations',
  'console',
  'docs/openapi.json',
  'compose/Dockerfile',
];

export interface Deps {
  /** null: --no-docker. */
  readonly engine: Engine | null;
  readonly composeUp: (info: MailcowInfo) => ComposeUp;
  /** null: no API key; the admin creates the relay domain by hand. */
  readonly api: MailcowApi | null;
  readonly out: (line: string) => void;
  readonly newSecret: () => string;
  /** This repository: shipped rspamd/ and postfix/ files, image build context. */
  readonly repoDir: string;
}

export interface RunArgs {
  readonly mailcowDir: string;
  readonly dryRun: boolean;
}

export interface Outcome {
  readonly changedFiles: readonly string[];
  readonly actions: readonly ContainerAction[];
  readonly pending: readonly string[];
}

async function readOptional(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
}

async function loadCheckout(dir: string): Promise<MailcowInfo> {
  const [conf, env, compose] = await Promise.all(
    [MAILCOW_CONF, MAILCOW_ENV, MAILCOW_COMPOSE].map((f) => readOptional(join(dir, f))),
  );
  // Unreadable because missing, or a symlink (Mailcow's .env → mailcow.conf) to nothing?
  const envLink = env === null ? await readlink(join(dir, MAILCOW_ENV)).catch(() => undefined) : undefined;
  return inspectCheckout({
    conf: conf ?? null,
    env: env ?? null,
    compose: compose ?? null,
    ...(envLink !== undefined ? { envDangling: envLink } : {}),
  });
}

async function loadShipped(repoDir: string): Promise<ShippedFiles> {
  const entries = await Promise.all(
    (Object.keys(SHIPPED) as ShippedName[]).map(async (k) => {
      const text = await readOptional(join(repoDir, SHIPPED[k]));
      if (text === null) throw new InstallError(`shipped file ${SHIPPED[k]} is missing from ${repoDir}`);
      return [k, text] as const;
    }),
  );
  return Object.fromEntries(entries) as ShippedFiles;
}

function showPlan(plan: Plan, info: MailcowInfo, out: Deps['out']): void {
  for (const e of plan.edits) out(unifiedDiff(e.path, e.before, e.after).trimEnd());
  for (const a of plan.actions) out(`would run: ${describe(a, info.project)}`);
}

function stepContext(
  deps: Deps & { engine: Engine },
  info: MailcowInfo,
  domain: string,
  expectHop: string | null,
  image: string,
): StepContext {
  return {
    engine: deps.engine,
    composeUp: deps.composeUp(info),
    project: info.project,
    domain,
    expectHop,
    image,
    buildImage: () => deps.engine.buildImage(deps.repoDir, IMAGE_CONTEXT, 'compose/Dockerfile', image),
    services: [BRIDGE_SERVICE, POSTGRES_SERVICE],
    out: deps.out,
  };
}

/** A step outside files and containers (the relay domain), with its undo. */
interface Extra {
  readonly run: () => Promise<void>;
  readonly undo: () => Promise<void>;
}
const NOTHING: Extra = { run: async () => undefined, undo: async () => undefined };

/**
 * Runs `first`, the plan's files, its container steps, then `last`; on any failure
 * puts the files back, re-runs the container steps needed, undoes `first`, rethrows.
 */
async function execute(
  plan: Plan,
  mailcowDir: string,
  deps: Deps,
  ctx: StepContext | null,
  first: Extra,
  last: Extra,
): Promise<void> {
  const tx = new FileTransaction(mailcowDir);
  const done: ContainerAction[] = [];
  let firstDone = false;
  try {
    await first.run();
    firstDone = true;
    for (const e of plan.edits)
      deps.out(`${e.after === null ? 'delete' : e.before === null ? 'create' : 'update'} ${e.path}`);
    await tx.apply(plan.edits);
    if (ctx) await runSteps(plan.actions, ctx, done);
    await last.run();
  } catch (err) {
    deps.out(`failed: ${(err as Error).message}`);
    deps.out('rolling back: restoring files');
    await tx.rollback();
    if (firstDone) await first.undo().catch((e: Error) => deps.out(`rollback failed: ${e.message}`));
    if (ctx) {
      const override = await readOptional(join(mailcowDir, OVERRIDE_FILE));
      await undoSteps(done, ctx, override).catch((e: Error) =>
        deps.out(`rollback of containers failed too: ${e.message}; run them by hand`),
      );
    }
    throw err;
  }
}

export async function runInstall(args: RunArgs, options: InstallOptions, deps: Deps): Promise<Outcome> {
  const info = await loadCheckout(args.mailcowDir);
  const shipped = await loadShipped(deps.repoDir);
  const snapshot = await readSnapshot(args.mailcowDir, MANAGED_FILES);
  const existing = deps.api ? await deps.api.getDomain(options.domain) : null;
  if (existing && !existing.relaysAll)
    throw new InstallError(
      `${options.domain} exists in Mailcow but is not a relay domain for all recipients; make it one (Relay this domain, Relay all recipients) or remove it`,
    );
  const createRelay = deps.api !== null && existing === null;
  const plan = planInstall({
    info,
    snapshot,
    shipped,
    options,
    newSecret: deps.newSecret,
    relayDomainCreated: createRelay,
  });
  const pending: string[] = [];
  deps.out(`Mailcow ${info.hostname} (project ${info.project}); agents domain ${options.domain}; mode ${options.mode}`);
  if (args.dryRun) {
    showPlan(plan, info, deps.out);
    if (createRelay) deps.out(`would create relay domain ${options.domain} through the Mailcow API`);
    deps.out(
      `dry run: nothing was changed (${plan.edits.length} file(s), ${plan.actions.length} container step(s) planned)`,
    );
    return { changedFiles: [], actions: [], pending };
  }
  if (plan.edits.length === 0) deps.out('files: already installed, nothing to change');
  const ctx = deps.engine
    ? stepContext({ ...deps, engine: deps.engine }, info, options.domain, LMTP_NEXTHOP, options.image)
    : null;
  // The relay domain comes last: before the transport exists, Postfix would relay the
  // domain to its own MX, i.e. back to itself, and bounce ("loops back to myself").
  const api = deps.api;
  const addRelay: Extra =
    api && createRelay
      ? {
          run: async () => {
            deps.out(`creating relay domain ${options.domain} through the Mailcow API`);
            await api.addRelayDomain(options.domain);
          },
          undo: async () => undefined,
        }
      : NOTHING;
  await execute(plan, args.mailcowDir, deps, ctx, NOTHING, addRelay);
  if (!ctx && plan.actions.length > 0) {
    deps.out('skipped (--no-docker); run these in the Mailcow directory:');
    for (const l of manualCommands(
      plan.actions,
      info.composeCommand,
      [BRIDGE_SERVICE, POSTGRES_SERVICE],
      options.image,
    ))
      deps.out(`  ${l}`);
  }
  if (!deps.api && !(await relayVerified(deps.engine, info, options.domain, deps.out))) {
    pending.push(`relay domain ${options.domain}`);
    deps.out(`relay domain ${options.domain} is not set up yet (no --api-key given):`);
    for (const l of manualRelaySteps(options.domain, info.hostname)) deps.out(`  ${l}`);
  }
  deps.out(pending.length ? 'installed, with steps left for you (above)' : 'installed');
  return { changedFiles: plan.edits.map((e) => e.path), actions: ctx ? plan.actions : [], pending };
}

/** Without the API: ask Postfix's own relay_domains query whether the domain is there. */
async function relayVerified(
  engine: Engine | null,
  info: MailcowInfo,
  domain: string,
  out: Deps['out'],
): Promise<boolean> {
  if (!engine) {
    out('relay domain: cannot check without Docker (--no-docker)');
    return false;
  }
  const postfix = await engine.findService(info.project, POSTFIX_SERVICE);
  if (!postfix) return false;
  const r = await engine.exec(postfix, [
    'postmap',
    '-q',
    domain,
    'mysql:/opt/postfix/conf/sql/mysql_virtual_relay_domain_maps.cf',
  ]);
  const ok = r.exitCode === 0 && r.output.trim().toLowerCase() === domain;
  if (ok) out(`relay domain ${domain}: present in Mailcow`);
  return ok;
}

export async function runUninstall(args: RunArgs, deps: Deps): Promise<Outcome> {
  const info = await loadCheckout(args.mailcowDir);
  const snapshot = await readSnapshot(args.mailcowDir, MANAGED_FILES);
  const plan = planUninstall(snapshot);
  const domain = plan.previous.domain;
  const pending: string[] = [];
  if (args.dryRun) {
    showPlan(plan, info, deps.out);
    if (plan.previous.relayDomainCreated && deps.api)
      deps.out(`would delete relay domain ${domain} through the Mailcow API`);
    deps.out(
      `dry run: nothing was changed (${plan.edits.length} file(s), ${plan.actions.length} container step(s) planned)`,
    );
    return { changedFiles: [], actions: [], pending };
  }
  // The relay domain goes first: without it Postfix refuses the domain at RCPT time (5xx to
  // the sender) instead of relaying mail without a transport back to itself.
  const api = deps.api;
  let dropRelay = NOTHING;
  if (plan.previous.relayDomainCreated && api) {
    dropRelay = {
      run: async () => {
        deps.out(`deleting relay domain ${domain} through the Mailcow API`);
        await api.deleteDomain(domain);
      },
      undo: async () => {
        deps.out(`re-creating relay domain ${domain}`);
        await api.addRelayDomain(domain);
      },
    };
  } else if (plan.previous.relayDomainCreated) {
    pending.push(`relay domain ${domain}`);
    deps.out(
      `relay domain ${domain} was created by the installer; delete it in the Mailcow UI (Email > Configuration > Domains) first, or pass --api-key`,
    );
  }
  const ctx = deps.engine ? stepContext({ ...deps, engine: deps.engine }, info, domain, null, '') : null;
  await execute(plan, args.mailcowDir, deps, ctx, dropRelay, NOTHING);
  if (!ctx && plan.actions.length > 0) {
    deps.out('skipped (--no-docker); run these in the Mailcow directory:');
    for (const l of manualCommands(plan.actions, info.composeCommand, [], '')) deps.out(`  ${l}`);
  }
  deps.out('uninstalled');
  return { changedFiles: plan.edits.map((e) => e.path), actions: ctx ? plan.actions : [], pending };
}
