// admp scale citus: distributes this ADMP database over a Citus cluster (docs/scaling.md).
import type { Command } from 'commander';
import { adminAction } from './admin-action.js';

export function registerScale(program: Command): void {
  adminAction<{ check?: boolean }>(
    program
      .command('scale')
      .description('scale the database out')
      .command('citus')
      .description(
        'distribute the queue tables by to_agent_id and make the others reference tables; refuses when the schema would not distribute correctly',
      )
      .option('--check', 'only print the plan and the problems, change nothing'),
    async (admin, _args, opts) => {
      const plan = await admin.scaleCitus(!opts.check);
      if (opts.check && plan.problems.length > 0) process.exitCode = 1;
      const did = opts.check ? ['would distribute', 'would make'] : ['distributed', 'made'];
      return {
        json: plan,
        text: [
          `${did[0]} by to_agent_id: ${plan.distribute.join(', ') || '(none)'}`,
          `${did[1]} reference tables: ${plan.reference.join(', ') || '(none)'}`,
          `already done: ${plan.done.join(', ') || '(none)'}`,
          ...plan.problems.map((p) => `problem: ${p}`),
        ].join('\n'),
      };
    },
  );
}
