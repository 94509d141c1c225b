// Runs the container actions of a plan in order, step by step, and undoes the ones that
// ran when something fails later (after the files were put back, the same actions make
// Postfix, Rspamd and Compose pick up the restored files).
import { definesBridge } from './compose-override.js';
import type { ComposeUp } from './compose-cli.js';
import type { ContainerRef, Engine } from './docker-engine.js';
import { InstallError } from './install-error.js';
import { BRIDGE_SERVICE, POSTFIX_SERVICE, POSTGRES_SERVICE, RSPAMD_SERVICE } from './layout.js';
import type { ContainerAction } from './plan.js';

export interface StepContext {
  readonly engine: Engine;
  readonly composeUp: ComposeUp;
  readonly project: string;
  readonly domain: string;
  /** The transport's next hop expected after the change, or null when the block goes away. */
  readonly expectHop: string | null;
  readonly image: string;
  /** Builds the bridge image when it is missing. */
  readonly buildImage: () => Promise<void>;
  /** Services of ours the override defines after the change. */
  readonly services: readonly string[];
  readonly out: (line: string) => void;
}

const TRANSPORT_IN_CONTAINER = '/opt/postfix/conf/custom_transport.pcre';

/** What each action does, in words, for --dry-run and --no-docker. */
export function describe(action: ContainerAction, project: string): string {
  switch (action) {
    case 'rspamd-configtest':
      return `rspamadm configtest in ${project}/${RSPAMD_SERVICE}`;
    case 'postfix-reload':
      return `postfix reload in ${project}/${POSTFIX_SERVICE}`;
    case 'rspamd-restart':
      return `restart ${project}/${RSPAMD_SERVICE}`;
    case 'bridge-up':
      return `build the bridge image if missing, then compose up -d ${BRIDGE_SERVICE} (and ${POSTGRES_SERVICE})`;
    case 'bridge-remove':
      return `stop and remove ${project}/${BRIDGE_SERVICE} and ${project}/${POSTGRES_SERVICE} (the database volume stays)`;
  }
}

async function service(ctx: StepContext, name: string): Promise<ContainerRef> {
  const c = await ctx.engine.findService(ctx.project, name);
  if (!c)
    throw new InstallError(
      `no running container for ${name} in Compose project ${ctx.project}; start Mailcow first (docker compose up -d)`,
    );
  return c;
}

async function must(ctx: StepContext, c: ContainerRef, cmd: readonly string[]): Promise<string> {
  const r = await ctx.engine.exec(c, cmd);
  if (r.exitCode !== 0)
    throw new InstallError(
      `${cmd.join(' ')} in ${c.name} failed (exit ${r.exitCode}): ${r.output.trim().split('\n').slice(-5).join(' | ')}`,
    );
  return r.output;
}

async function runOne(action: ContainerAction, ctx: StepContext): Promise<void> {
  switch (action) {
    case 'rspamd-configtest':
      await must(ctx, await service(ctx, RSPAMD_SERVICE), ['rspamadm', 'configtest']);
      return;
    case 'postfix-reload': {
      const postfix = await service(ctx, POSTFIX_SERVICE);
      if (ctx.expectHop) {
        // The table Postfix will read, asked the way Postfix asks it (transport(5)).
        const hop = (
          await must(ctx, postfix, ['postmap', '-q', `postmaster@${ctx.domain}`, `pcre:${TRANSPORT_IN_CONTAINER}`])
        ).trim();
        if (hop !== ctx.expectHop)
          throw new InstallError(
            `custom_transport.pcre answers "${hop}" for ${ctx.domain}, expected "${ctx.expectHop}"`,
          );
      }
      await must(ctx, postfix, ['postfix', 'reload']);
      return;
    }
    case 'rspamd-restart':
      await ctx.engine.restart(await service(ctx, RSPAMD_SERVICE));
      return;
    case 'bridge-up':
      if (!(await ctx.engine.imageExists(ctx.image))) {
        ctx.out(`      building image ${ctx.image} from compose/Dockerfile`);
        await ctx.buildImage();
      }
      await ctx.composeUp(ctx.services);
      return;
    case 'bridge-remove':
      for (const s of [BRIDGE_SERVICE, POSTGRES_SERVICE]) await ctx.engine.removeService(ctx.project, s);
  }
}

/** Runs `actions`; returns those that completed, for undo(). Throws on the first failure. */
export async function runSteps(
  actions: readonly ContainerAction[],
  ctx: StepContext,
  done: ContainerAction[],
): Promise<void> {
  let n = 0;
  for (const action of actions) {
    ctx.out(`[${++n}/${actions.length}] ${describe(action, ctx.project)}`);
    await runOne(action, ctx);
    done.push(action);
    ctx.out('      ok');
  }
}

/** After the files were restored: make the containers read them again. */
export async function undoSteps(
  done: readonly ContainerAction[],
  ctx: StepContext,
  restoredOverride: string | null,
): Promise<void> {
  const again: ContainerAction[] = [];
  if (done.includes('postfix-reload')) again.push('postfix-reload');
  if (done.includes('rspamd-restart')) again.push('rspamd-restart');
  if (done.includes('bridge-up') || done.includes('bridge-remove'))
    again.push(definesBridge(restoredOverride) ? 'bridge-up' : 'bridge-remove');
  if (again.length === 0) return;
  ctx.out('rolling back containers:');
  await runSteps(again, { ...ctx, expectHop: null }, []);
}

/** The command lines an admin runs by hand for `actions` (--no-docker). */
export function manualCommands(
  actions: readonly ContainerAction[],
  compose: readonly string[],
  services: readonly string[],
  image: string,
): string[] {
  const c = compose.join(' ');
  const lines: string[] = [];
  for (const a of actions) {
    if (a === 'rspamd-configtest') lines.push(`${c} exec ${RSPAMD_SERVICE} rspamadm configtest`);
    if (a === 'postfix-reload') lines.push(`${c} exec ${POSTFIX_SERVICE} postfix reload`);
    if (a === 'rspamd-restart') lines.push(`${c} restart ${RSPAMD_SERVICE}`);
    if (a === 'bridge-up')
      lines.push(
        `docker build -t ${image} -f compose/Dockerfile <admp checkout>   # when the image is missing`,
        `${c} up -d ${services.join(' ')}`,
      );
    if (a === 'bridge-remove') lines.push(`${c} rm -s -f ${BRIDGE_SERVICE} ${POSTGRES_SERVICE}`);
  }
  return lines;
}
