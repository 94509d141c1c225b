// Writable copies of the Mailcow fixture (shared/fixtures/mailcow, read-only) for installer
// tests, a byte-exact picture of a tree, and runInstall/runUninstall wired for file work.
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MailcowApi } from '../../src/installer/mailcow-api.js';
import type { InstallOptions } from '../../src/installer/plan.js';
import { runInstall, runUninstall, type Deps, type Outcome } from '../../src/installer/run.js';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE = join(REPO, '..', 'shared', 'fixtures', 'mailcow');
export const COMPOSE_SPEC = join(REPO, '..', 'shared', 'fixtures', 'compose-spec', 'compose-spec.json');

/**
 * A writable checkout as generate_config.sh leaves it: `.env` is a symlink to mailcow.conf
 * (the fixture as laid out holds a plain file with that text instead).
 */
export function copyCheckout(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'admp-mailcow-'));
  cpSync(FIXTURE, dir, { recursive: true, verbatimSymlinks: true });
  rmSync(join(dir, '.env'), { force: true });
  symlinkSync('mailcow.conf', join(dir, '.env'));
  const writable = (d: string): void => {
    chmodSync(d, 0o755);
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) writable(join(d, e.name));
      else if (e.isFile()) chmodSync(join(d, e.name), 0o644);
    }
  };
  writable(dir);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Every file of the tree (not .git), path → bytes (hex), for byte-identical comparisons; a
 * symlink → `symlink:<target>`, never followed (it may dangle, like `.env` once
 * mailcow.conf is gone).
 */
export function treeBytes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isSymbolicLink()) out[relative(dir, p)] = `symlink:${readlinkSync(p)}`;
      else out[relative(dir, p)] = readFileSync(p).toString('hex');
    }
  };
  walk(dir);
  return out;
}

export const read = (dir: string, path: string): string => readFileSync(join(dir, path), 'utf8');

export const OPTIONS: InstallOptions = {
  domain: 'agents.example.com',
  mode: 'both',
  databaseUrl: null,
  image: 'admp-bridge:latest',
  httpPublish: '127.0.0.1:8080',
  timeoutSec: 10,
};

export interface Recorder {
  readonly lines: string[];
  readonly deps: Deps;
}

/** Deps for file-only runs (--no-docker), with a counter for secrets so output is predictable. */
export function fileDeps(api: MailcowApi | null = null, overrides: Partial<Deps> = {}): Recorder {
  const lines: string[] = [];
  let n = 0;
  return {
    lines,
    deps: {
      engine: null,
      composeUp: () => async () => {
        throw new Error('compose is not used without Docker');
      },
      api,
      out: (l) => lines.push(l),
      newSecret: () => `test-secret-${String(++n).padStart(4, '0')}-0123456789abcdef`,
      repoDir: REPO,
      ...overrides,
    },
  };
}

export const install = (
  dir: string,
  deps: Deps,
  options: Partial<InstallOptions> = {},
  dryRun = false,
): Promise<Outcome> => runInstall({ mailcowDir: dir, dryRun }, { ...OPTIONS, ...options }, deps);
export const uninstall = (dir: string, deps: Deps, dryRun = false): Promise<Outcome> =>
  runUninstall({ mailcowDir: dir, dryRun }, deps);
