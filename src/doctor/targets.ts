// Where the doctor runs Postfix and Rspamd commands: on this host (a non-Docker
// install, or the private daemons of the tests), or inside Mailcow's containers
// through the Docker Engine API, found by their Compose labels like the installer does.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseEnvFile } from '../installer/mailcow-checkout.js';
import { dockerEngine } from '../installer/docker-engine.js';
import { MAILCOW_CONF, MAILCOW_ENV } from '../installer/layout.js';

const run = promisify(execFile);

export interface CommandResult {
  readonly code: number;
  readonly output: string;
}
/** Runs argv somewhere; a non-zero code with the output when it fails. */
export type RunCommand = (argv: readonly string[]) => Promise<CommandResult>;

export const localCommand: RunCommand = async (argv) => {
  try {
    const { stdout, stderr } = await run(argv[0]!, argv.slice(1), { timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : 127,
      output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message,
    };
  }
};

/** The Compose project of a Mailcow checkout (COMPOSE_PROJECT_NAME, as the installer reads it). */
export async function mailcowProject(dir: string): Promise<string> {
  const read = (f: string) => readFile(join(dir, f), 'utf8').catch(() => '');
  const vars = new Map([...parseEnvFile(await read(MAILCOW_CONF)), ...parseEnvFile(await read(MAILCOW_ENV))]);
  return (vars.get('COMPOSE_PROJECT_NAME') || 'mailcowdockerized').toLowerCase();
}

/** Runs commands in the running container of a Mailcow Compose service. */
export async function containerCommand(project: string, service: string): Promise<RunCommand> {
  const { default: Dockerode } = await import('dockerode');
  const engine = dockerEngine(new Dockerode());
  return async (argv) => {
    const c = await engine.findService(project, service).catch((err: Error) => {
      throw new Error(`Docker Engine: ${err.message}`);
    });
    if (!c) return { code: 127, output: `no running container of the Compose service ${service} (project ${project})` };
    const r = await engine.exec(c, argv);
    return { code: r.exitCode, output: r.output };
  };
}

/** The agents domain's DKIM key as Mailcow keeps it (Redis hashes DKIM_SELECTORS and DKIM_PRIV_KEYS). */
export async function mailcowDkimKey(
  project: string,
  domain: string,
): Promise<{ selector: string; privateKeyPem: string } | undefined> {
  const redis = await containerCommand(project, 'redis-mailcow');
  const selector = (await redis(['redis-cli', '--raw', 'HGET', 'DKIM_SELECTORS', domain])).output.trim();
  if (!selector) return undefined;
  const key = (await redis(['redis-cli', '--raw', 'HGET', 'DKIM_PRIV_KEYS', `${selector}.${domain}`])).output.trim();
  if (!key) return undefined;
  // Mailcow stores the base64 body; PEM-wrap it when the armour is missing.
  const pem = key.includes('BEGIN')
    ? key
    : `-----BEGIN PRIVATE KEY-----\n${key.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
  return { selector, privateKeyPem: pem };
}
