// `admp serve` (and `npm start`) as real child processes, for tests that signal, kill
// and restart them: their output, their exit, and readiness polling.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO = join(import.meta.dirname, '..', '..');

export interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts a command in the repository; it is SIGKILLed when the test ends if still running. */
export function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  t: { after(fn: () => void): void },
): Proc {
  const child = spawn(command, args, {
    cwd: REPO,
    env: { ...process.env, ADMP_LOG_LEVEL: 'info', ADMP_POLICY_FILE: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => out, exited };
}

/** `admp serve` with these settings. */
export const serve = (env: Record<string, string>, t: { after(fn: () => void): void }): Proc =>
  run(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'cli', 'main.ts'), 'serve'], env, t);

export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export const ready = async (port: number): Promise<boolean> =>
  (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200;

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
