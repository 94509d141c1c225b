// The `admp` CLI for tests. admp() runs a command inside the test's own process, through
// the command tree the binary parses (src/cli/program.ts), with process.env, stdout and
// stderr swapped for the call: each spawned `node --import tsx src/cli/main.ts` pays 1–4 s
// of start-up (the TypeScript loader and every module of the CLI), which made the CLI
// tests the slowest files of the suite. admpBinary() spawns the real entry point; a test
// file that uses admp() runs it at least once too, so main.ts itself stays tested.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CommanderError } from 'commander';
import { createProgram, exitStatus } from '../../src/cli/program.js';

const run = promisify(execFile);
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let busy = false;

/** `admp <args>` in this process with `env` as its whole environment. */
export async function admp(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  if (busy) throw new Error('admp(): one command at a time (it swaps process.env and stdout)');
  busy = true;
  const saved = { env: process.env, out: process.stdout.write, err: process.stderr.write, code: process.exitCode };
  let stdout = '';
  let stderr = '';
  // The test runner reports to its parent on this process's stdout as V8-serialized
  // buffers (they begin with the serializer's 0xFF header byte): those pass through. What a
  // command writes is text or mail, never 0xFF first.
  const capture =
    (stream: NodeJS.WriteStream, add: (s: string) => void): typeof process.stdout.write =>
    (chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk === 'string' || (chunk instanceof Uint8Array && chunk[0] !== 0xff)) {
        add(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
        return true;
      }
      return (saved[stream === process.stdout ? 'out' : 'err'] as (...a: unknown[]) => boolean).call(
        stream,
        chunk,
        ...rest,
      );
    };
  process.env = { ...env };
  process.exitCode = undefined;
  process.stdout.write = capture(process.stdout, (s) => (stdout += s));
  process.stderr.write = capture(process.stderr, (s) => (stderr += s));
  let code: number;
  try {
    await createProgram(true).parseAsync(['node', 'admp', ...args]);
    code = Number(process.exitCode ?? 0);
  } catch (err) {
    // A usage error: commander has written it to stderr already. Otherwise what main.ts does.
    if (err instanceof CommanderError) code = err.exitCode;
    else {
      stderr += `admp: ${(err as Error).message}\n`;
      code = exitStatus(err);
    }
  } finally {
    process.env = saved.env;
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.exitCode = saved.code;
    busy = false;
  }
  return { code, stdout, stderr };
}

/** `admp <args>` as its own process: `node --import tsx src/cli/main.ts`, the entry point npm runs. */
export async function admpBinary(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  return run(process.execPath, ['--import', 'tsx', MAIN, ...args], { env }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}
