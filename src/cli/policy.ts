// admp policy add | list | remove: the run-time policy rules (policy_rule table).
// Rules of the policy file (ADMP_POLICY_FILE) come first; see docs/policy.md.
import type { Command } from 'commander';
import { AdmpError } from '../errors.js';
import { adminAction, listCommand } from './admin-action.js';

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('manage delivery policy rules');
  adminAction<{ from: string; to: string; type: string[]; subject?: string; maxBytes?: number; action: string }>(
    policy
      .command('add')
      .description('add a rule: who may send what to whom (first match wins)')
      .requiredOption('--from <glob>', 'sender agent address glob, e.g. "*@agents.partner.example"')
      .requiredOption('--to <glob>', 'recipient agent address glob')
      .option('--type <glob>', 'ADMP type glob (repeatable)', collect, [])
      .option('--subject <glob>', 'subject glob')
      .option('--max-bytes <n>', 'largest message admitted', (v) => Number(v))
      .option('--action <allow|deny>', 'what a match does', 'allow'),
    async (admin, _args, o) => {
      if (o.action !== 'allow' && o.action !== 'deny') throw new AdmpError('bad_request', '--action is allow or deny');
      if (o.maxBytes !== undefined && !(Number.isInteger(o.maxBytes) && o.maxBytes > 0))
        throw new AdmpError('bad_request', '--max-bytes is a positive integer');
      const row = await admin.addRule({
        from: o.from,
        to: o.to,
        types: o.type,
        subject: o.subject,
        max_bytes: o.maxBytes,
        action: o.action,
      });
      return { json: row, text: `rule ${row.id} added: ${row.action} ${row.from_glob} -> ${row.to_glob}` };
    },
  );
  listCommand(
    policy,
    'list run-time rules',
    (admin) => admin.listRules(),
    ['id', 'action', 'from_glob', 'to_glob', 'types', 'subject', 'max_bytes'],
    (r) => ({ ...r, types: r.types.join(',') }),
  );
  adminAction(policy.command('remove <id>').description('remove a run-time rule'), async (admin, [id]) => {
    await admin.removeRule(Number(id));
    return { json: { removed: Number(id) }, text: `rule ${id} removed` };
  });
}
