// The shape every operator command shares: --json, the Admin service over the
// configured database (or, for the commands the admin API offers, the Operator:
// that database or a server's admin API, src/cli/operator.ts), and one result printed
// as JSON or as text.
import type { Command } from 'commander';
import type { Admin } from '../admin/admin.js';
import type { Config } from '../config.js';
import { withAdmin } from '../app/open.js';
import { print, table } from './output.js';
import { withOperator, type Operator } from './operator.js';

export interface Printed {
  readonly json: unknown;
  readonly text: string;
}

/** Gives `cmd` a --json option and an action that runs `run` with the Admin service. */
export function adminAction<O extends object>(
  cmd: Command,
  run: (admin: Admin, args: string[], opts: O, config: Config) => Promise<Printed>,
): Command {
  return cmd.option('--json', 'print JSON').action(async (...all: unknown[]) => {
    const opts = all.at(-2) as O & { json?: boolean };
    const args = all.slice(0, -2) as string[];
    await withAdmin(async (admin, config) => {
      const r = await run(admin, args, opts, config);
      print(opts.json, r.json, () => r.text);
    });
  });
}

/** A `list` subcommand: the rows the Admin service returns, as JSON or a table of `columns`. */
export function listCommand<R extends object>(
  parent: Command,
  description: string,
  rows: (admin: Admin) => Promise<R[]>,
  columns: string[],
  show: (row: R) => Record<string, unknown> = (row) => ({ ...row }) as Record<string, unknown>,
): void {
  adminAction(parent.command('list').description(description), async (admin) => {
    const found = await rows(admin);
    return { json: found, text: table(found.map(show), columns) };
  });
}

/** Like adminAction, through the Operator: remotely when ADMP_URL is set. */
export function operatorAction<O extends object>(
  cmd: Command,
  run: (op: Operator, args: string[], opts: O) => Promise<Printed>,
): Command {
  return cmd.option('--json', 'print JSON').action(async (...all: unknown[]) => {
    const opts = all.at(-2) as O & { json?: boolean };
    const args = all.slice(0, -2).flat() as string[];
    await withOperator(async (op) => {
      const r = await run(op, args, opts);
      print(opts.json, r.json, () => r.text);
    });
  });
}

/** A `list` subcommand through the Operator. */
export function operatorList<R extends object>(
  parent: Command,
  description: string,
  rows: (op: Operator) => Promise<R[]>,
  columns: string[],
  show: (row: R) => Record<string, unknown> = (row) => ({ ...row }) as Record<string, unknown>,
): void {
  operatorAction(parent.command('list').description(description), async (op) => {
    const found = await rows(op);
    return { json: found, text: table(found.map(show), columns) };
  });
}
