// The `admp` command. Each command family lives in its own module and registers
// itself here; every command that prints data also takes --json.
import { Command } from 'commander';
import { AdmpError, ConfigError } from '../errors.js';
import { registerServe } from './serve.js';
import { registerAgents } from './agents.js';
import { registerTenants } from './tenants.js';
import { registerKeys } from './keys.js';
import { registerPolicy } from './policy.js';
import { registerInstall } from './install.js';
import { registerDoctor } from './doctor.js';
import { registerAdmin } from './admin.js';
import { registerMcp } from './mcp.js';
import { registerMessages } from './messages.js';
import { registerBackup } from './backup.js';
import { registerScale } from './scale.js';
import { registerWebhooks } from './webhooks.js';

const program = new Command('admp')
  .description('Agent Dispatch: authenticated agent messaging over HTTP and email')
  .showHelpAfterError();

registerServe(program);
registerAgents(program);
registerTenants(program);
registerKeys(program);
registerPolicy(program);
registerInstall(program);
registerDoctor(program);
registerAdmin(program);
registerMcp(program);
registerMessages(program);
registerBackup(program);
registerScale(program);
registerWebhooks(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`admp: ${err.message}`);
    process.exit(78); // EX_CONFIG (sysexits.h)
  }
  console.error(`admp: ${(err as Error).message}`);
  process.exit(err instanceof AdmpError && err.code === 'bad_request' ? 64 : 1); // EX_USAGE
}
