// The pure core: from the checkout's current files, the shipped templates and the
// options, compute every file edit and container action of an install or uninstall.
// Nothing here reads the disk, talks to Docker or draws random numbers.
import { mergeOverride, unmergeOverride, type BridgeSpec } from './compose-override.js';
import {
  decodeBytes,
  encodeBytes,
  serializeState,
  sha256,
  parseState,
  type FileRecord,
  type InstallState,
  type Mode,
} from './install-state.js';
import { InstallError } from './install-error.js';
import type { MailcowInfo } from './mailcow-checkout.js';
import {
  OVERRIDE_FILE,
  RSPAMD_ACTIONS_FILE,
  RSPAMD_CONF_FILE,
  RSPAMD_LOADER_FILE,
  RSPAMD_PLUGIN_FILE,
  STATE_FILE,
  TRANSPORT_FILE,
} from './layout.js';
import {
  HASH_STYLE,
  LUA_STYLE,
  renderActionsBlock,
  renderLoaderBlock,
  renderPluginConf,
  renderTransportBlock,
  type ShippedFiles,
} from './shipped-files.js';
import { removeBlock, upsertBlock, type BlockStyle } from './text-block.js';

export interface InstallOptions {
  readonly domain: string;
  readonly mode: Mode;
  readonly databaseUrl: string | null;
  readonly image: string;
  readonly httpPublish: string;
  readonly timeoutSec: number;
}

/** after === null deletes the file; mode applies when the file is created. */
export interface FileEdit {
  readonly path: string;
  readonly before: string | null;
  readonly after: string | null;
  readonly mode: number;
}

export type ContainerAction = 'rspamd-configtest' | 'postfix-reload' | 'rspamd-restart' | 'bridge-up' | 'bridge-remove';

export interface Plan {
  readonly edits: readonly FileEdit[];
  readonly actions: readonly ContainerAction[];
  readonly state: InstallState | null;
}

/** Current contents of the managed files (null: missing). */
export type Snapshot = ReadonlyMap<string, string | null>;

/** How each managed file is shared: wholly ours, a marked block, or YAML nodes. */
type Kind = { own: true } | { block: BlockStyle } | { yaml: true };
const KINDS: Readonly<Record<string, Kind>> = {
  [OVERRIDE_FILE]: { yaml: true },
  [TRANSPORT_FILE]: { block: HASH_STYLE },
  [RSPAMD_LOADER_FILE]: { block: LUA_STYLE },
  [RSPAMD_ACTIONS_FILE]: { block: HASH_STYLE },
  [RSPAMD_PLUGIN_FILE]: { own: true },
  [RSPAMD_CONF_FILE]: { own: true },
};
/** Every file the installer may write, in the order edits are applied. */
export const MANAGED_FILES = [...Object.keys(KINDS), STATE_FILE];
const RSPAMD_FILES = new Set([RSPAMD_PLUGIN_FILE, RSPAMD_CONF_FILE, RSPAMD_LOADER_FILE, RSPAMD_ACTIONS_FILE]);
/** Files holding secrets (ingress token, database password) are created owner-only. */
const SECRET_FILES = new Set([OVERRIDE_FILE, RSPAMD_CONF_FILE, STATE_FILE]);
const modeFor = (path: string): number => (SECRET_FILES.has(path) ? 0o600 : 0o644);

/** What a file should hold without the installer's part, given how it was installed. */
function withoutOurs(path: string, current: string | null, rec: FileRecord): string | null {
  if (current === null) return null;
  if (sha256(current) === rec.after) return rec.created ? null : decodeBytes(rec.before ?? '');
  // Changed by someone since install: take out only our part, keep theirs.
  const kind = KINDS[path]!;
  if ('own' in kind) return null;
  const rest =
    'yaml' in kind
      ? unmergeOverride(current, rec.createdKeys ?? [])
      : removeBlock(current, kind.block, path, rec.addedNewline);
  return rec.created && rest.trim() === '' ? null : rest;
}

interface Desired {
  readonly text: string;
  readonly record: Omit<FileRecord, 'after'>;
}

/** Content with our part in it; `base` is the file as it would be without us. */
function withOurs(path: string, base: string | null, ours: string | BridgeSpec, prev: FileRecord | undefined): Desired {
  const kind = KINDS[path]!;
  const origin: Omit<FileRecord, 'after'> = prev
    ? { created: prev.created, ...(prev.before !== undefined ? { before: prev.before } : {}) }
    : { created: base === null, ...(base !== null ? { before: encodeBytes(base) } : {}) };
  if ('own' in kind) return { text: ours as string, record: origin };
  if ('yaml' in kind) {
    const merged = mergeOverride(base, ours as BridgeSpec);
    const createdKeys = prev?.createdKeys ?? merged.createdKeys;
    return { text: merged.text, record: { ...origin, ...(createdKeys.length ? { createdKeys } : {}) } };
  }
  const up = upsertBlock(base ?? '', ours as string, kind.block, path);
  const addedNewline = prev?.addedNewline ?? up.addedNewline;
  return { text: up.text, record: { ...origin, ...(addedNewline ? { addedNewline } : {}) } };
}

function actionsFor(changed: ReadonlySet<string>, uninstall: boolean): ContainerAction[] {
  const out: ContainerAction[] = [];
  const rspamd = [...changed].some((p) => RSPAMD_FILES.has(p));
  if (rspamd && !uninstall) out.push('rspamd-configtest');
  if (changed.has(TRANSPORT_FILE)) out.push('postfix-reload');
  if (rspamd) out.push('rspamd-restart');
  if (changed.has(OVERRIDE_FILE)) out.push(uninstall ? 'bridge-remove' : 'bridge-up');
  return out;
}

function finish(
  snapshot: Snapshot,
  after: Map<string, string | null>,
  state: InstallState | null,
  uninstall: boolean,
): Plan {
  after.set(STATE_FILE, state ? serializeState(state) : null);
  const edits: FileEdit[] = [];
  for (const path of MANAGED_FILES) {
    const before = snapshot.get(path) ?? null;
    const next = after.has(path) ? after.get(path)! : before;
    if (next !== before) edits.push({ path, before, after: next, mode: modeFor(path) });
  }
  const changed = new Set(edits.map((e) => e.path));
  return { edits, actions: actionsFor(changed, uninstall), state };
}

export interface InstallInputs {
  readonly info: MailcowInfo;
  readonly snapshot: Snapshot;
  readonly shipped: ShippedFiles;
  readonly options: InstallOptions;
  /** Fresh secret for a first install (injected: the core draws no random numbers). */
  readonly newSecret: () => string;
  /** The relay domain will be (or was) created through the API by this installer. */
  readonly relayDomainCreated: boolean;
}

const DOMAIN = /^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

export function planInstall(input: InstallInputs): Plan {
  const { snapshot, shipped, options } = input;
  if (!DOMAIN.test(options.domain))
    throw new InstallError(`--domain ${options.domain} is not a lower-case domain name like agents.example.com`);
  // Mailcow refuses a domain equal to its host name (domain_cannot_match_hostname).
  if (options.domain === input.info.hostname)
    throw new InstallError(`--domain must differ from MAILCOW_HOSTNAME (${input.info.hostname})`);
  const prev = parseState(snapshot.get(STATE_FILE) ?? null);
  const secrets = prev?.secrets ?? { ingressToken: input.newSecret(), postgresPassword: input.newSecret() };
  const postfilter = options.mode === 'both';
  const spec: BridgeSpec = {
    image: options.image,
    domain: options.domain,
    databaseUrl: options.databaseUrl,
    postgresPassword: secrets.postgresPassword,
    ingressToken: secrets.ingressToken,
    postfilter,
    httpPublish: options.httpPublish,
  };
  const ours = new Map<string, string | BridgeSpec>([
    [OVERRIDE_FILE, spec],
    [TRANSPORT_FILE, renderTransportBlock(shipped, options.domain)],
  ]);
  if (postfilter) {
    ours.set(RSPAMD_PLUGIN_FILE, shipped.plugin);
    ours.set(
      RSPAMD_CONF_FILE,
      renderPluginConf(shipped, {
        domain: options.domain,
        token: secrets.ingressToken,
        timeoutSec: options.timeoutSec,
      }),
    );
    ours.set(RSPAMD_LOADER_FILE, renderLoaderBlock());
    ours.set(RSPAMD_ACTIONS_FILE, renderActionsBlock(shipped));
  }
  const after = new Map<string, string | null>();
  const files: Record<string, FileRecord> = {};
  for (const path of Object.keys(KINDS)) {
    const current = snapshot.get(path) ?? null;
    const rec = prev?.files[path];
    // A reinstall works from the file as it would be without us, so options can change.
    const base = rec ? withoutOurs(path, current, rec) : current;
    const want = ours.get(path);
    if (want === undefined) {
      if (rec) after.set(path, base);
      continue;
    }
    const d = withOurs(path, base, want, rec);
    after.set(path, d.text);
    files[path] = { ...d.record, after: sha256(d.text) };
  }
  const state: InstallState = {
    version: 1,
    domain: options.domain,
    mode: options.mode,
    secrets,
    relayDomainCreated: prev?.relayDomainCreated || input.relayDomainCreated,
    files,
  };
  return finish(snapshot, after, state, false);
}

export function planUninstall(snapshot: Snapshot): Plan & { previous: InstallState } {
  const prev = parseState(snapshot.get(STATE_FILE) ?? null);
  if (!prev) throw new InstallError('no ADMP installation found here (nothing to uninstall)', STATE_FILE);
  const after = new Map<string, string | null>();
  for (const [path, rec] of Object.entries(prev.files)) {
    if (KINDS[path]) after.set(path, withoutOurs(path, snapshot.get(path) ?? null, rec));
  }
  return { ...finish(snapshot, after, null, true), previous: prev };
}
