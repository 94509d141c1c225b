// The `admp` command tree. Each command family lives in its own module and registers
// itself here; every command that prints data also takes --json. main.ts parses the
// process's arguments with it; tests run commands through it in their own process.
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

/** `throwOnExit`: a usage error or --help throws a CommanderError instead of ending the process. */
export function createProgram(throwOnExit = false): Command {
  const program = new Command('admp')
    .description('Agent Dispatch: authenticated agent messaging over HTTP and email')
    .showHelpAfterError();
  // Before the commands are added: they copy it when they are created.
  if (throwOnExit) program.exitOverride();
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
  return program;
}

/** The exit status for an error a command threw (sysexits.h): EX_CONFIG, EX_USAGE, or 1. */
export function exitStatus(err: unknown): number {
  if (err instanceof ConfigError) return 78;
  return err instanceof AdmpError && err.code === 'bad_request' ? 64 : 1;
}
