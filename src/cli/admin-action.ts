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

/** Opens what a command runs with (the Admin service, or the Operator), hands it over, closes it. */
type Opener<C extends unknown[]> = (use: (...ctx: C) => Promise<void>) => Promise<void>;

/** Gives `cmd` a --json option and an action that runs `run` with what `open` opens, printing its result. */
function printedAction<C extends unknown[], O extends object>(
  cmd: Command,
  open: Opener<C>,
  run: (ctx: C, args: string[], opts: O) => Promise<Printed>,
): Command {
  return cmd.option('--json', 'print JSON').action(async (...all: unknown[]) => {
    const opts = all.at(-2) as O & { json?: boolean };
    // A variadic argument (`<ids...>`) arrives as one array: flattened into the list.
    const args = all.slice(0, -2).flat() as string[];
    await open(async (...ctx) => {
      const r = await run(ctx, args, opts);
      print(opts.json, r.json, () => r.text);
    });
  });
}

/** Gives `cmd` a --json option and an action that runs `run` with the Admin service. */
export function adminAction<O extends object>(
  cmd: Command,
  run: (admin: Admin, args: string[], opts: O, config: Config) => Promise<Printed>,
): Command {
  return printedAction<[Admin, Config], O>(cmd, withAdmin, ([admin, config], args, opts) =>
    run(admin, args, opts, config),
  );
}

/** Like adminAction, through the Operator: remotely when ADMP_URL is set. */
export function operatorAction<O extends object>(
  cmd: Command,
  run: (op: Operator, args: string[], opts: O) => Promise<Printed>,
): Command {
  return printedAction<[Operator], O>(cmd, withOperator, ([op], args, opts) => run(op, args, opts));
}

const asRecord = <R extends object>(row: R) => ({ ...row }) as Record<string, unknown>;

/**
 * A `list` subcommand: the rows `rows` returns, as JSON or a table of `columns`, run by
 * `action` (adminAction: the Admin service; operatorAction: remotely when ADMP_URL is set).
 */
export function listCommand<T, R extends object>(
  action: (cmd: Command, run: (ctx: T) => Promise<Printed>) => Command,
  parent: Command,
  description: string,
  rows: (ctx: T) => Promise<R[]>,
  columns: string[],
  show: (row: R) => Record<string, unknown> = asRecord,
): void {
  action(parent.command('list').description(description), async (ctx) => {
    const found = await rows(ctx);
    return { json: found, text: table(found.map(show), columns) };
  });
}
