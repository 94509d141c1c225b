// `docker compose up -d <services>` from the Mailcow directory. This is the one step not
// done through the Engine API: Compose itself must create the bridge containers, with
// its labels and config hash, or Mailcow's next `compose up` (update.sh) would recreate them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type ComposeUp = (services: readonly string[]) => Promise<void>;

export function composeUp(command: readonly string[], mailcowDir: string): ComposeUp {
  return async (services) => {
    const [bin, ...args] = command;
    await run(bin!, [...args, 'up', '-d', ...services], { cwd: mailcowDir, maxBuffer: 16 * 1024 * 1024 });
  };
}
