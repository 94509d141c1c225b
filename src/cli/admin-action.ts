// The shape every operator command shares: --json, the Admin service over the
// configured database, and one result printed as JSON or as text.
import type { Command } from 'commander';
import type { Admin } from '../admin/admin.js';
import type { Config } from '../config.js';
import { withAdmin } from '../app/open.js';
import { print, table } from './output.js';

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
