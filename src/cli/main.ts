// The `admp` command. Each command family lives in its own module and registers
// itself here; every command that prints data also takes --json.
import { Command } from 'commander';
import { ConfigError } from '../errors.js';

const program = new Command('admp').description('Agent Dispatch: authenticated agent messaging over HTTP and email').showHelpAfterError();

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`admp: ${err.message}`);
    process.exit(78); // EX_CONFIG (sysexits.h)
  }
  console.error(`admp: ${(err as Error).message}`);
  process.exit(1);
}
