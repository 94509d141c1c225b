// The `admp` command: the command tree of program.ts over this process's arguments; an
// error a command throws is one line on stderr and its exit status.
import { createProgram, exitStatus } from './program.js';

try {
  await createProgram().parseAsync(process.argv);
} catch (err) {
  console.error(`admp: ${(err as Error).message}`);
  process.exit(exitStatus(err));
}
