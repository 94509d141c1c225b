// admp policy add | list | remove: the run-time policy rules (policy_rule table).
// Rules of the policy file (ADMP_POLICY_FILE) come first; see docs/policy.md.
import type { Command } from 'commander';
import { AdmpError } from '../errors.js';
import { listCommand, operatorAction } from './admin-action.js';
import type { Operator } from './operator.js';

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('manage delivery policy rules');
  operatorAction<{ from: string; to: string; type: string[]; subject?: string; maxBytes?: number; action: string }>(
    policy
      .command('add')
      .description('add a rule: who may send what to whom (first match wins)')
      .requiredOption('--from <glob>', 'sender agent address glob, e.g. "*@agents.partner.example"')
      .requiredOption('--to <glob>', 'recipient agent address glob')
      .option('--type <glob>', 'ADMP type glob (repeatable)', collect, [])
      .option('--subject <glob>', 'subject glob')
      .option('--max-bytes <n>', 'largest message admitted', (v) => Number(v))
      .option('--action <allow|deny>', 'what a match does', 'allow'),
    async (op, _args, o) => {
      if (o.action !== 'allow' && o.action !== 'deny') throw new AdmpError('bad_request', '--action is allow or deny');
      if (o.maxBytes !== undefined && !(Number.isInteger(o.maxBytes) && o.maxBytes > 0))
        throw new AdmpError('bad_request', '--max-bytes is a positive integer');
      const row = await op.addRule({
        from: o.from,
        to: o.to,
        types: o.type,
        ...(o.subject !== undefined ? { subject: o.subject } : {}),
        ...(o.maxBytes !== undefined ? { max_bytes: o.maxBytes } : {}),
        action: o.action,
      });
      return { json: row, text: `rule ${row.id} added: ${row.action} ${row.from_glob} -> ${row.to_glob}` };
    },
  );
  listCommand(
    operatorAction,
    policy,
    'list run-time rules',
    (op: Operator) => op.listRules(),
    ['id', 'action', 'from_glob', 'to_glob', 'types', 'subject', 'max_bytes'],
    (r) => ({ ...r, types: r.types.join(',') }),
  );
  operatorAction(policy.command('remove <id>').description('remove a run-time rule'), async (op, [id]) => {
    if (!/^\d{1,18}$/.test(id!)) throw new AdmpError('bad_request', `rule id "${id}" is not a number`);
    await op.removeRule(Number(id));
    return { json: { removed: Number(id) }, text: `rule ${id} removed` };
  });
  operatorAction<{ from: string; to: string; type: string; subject?: string; bytes: number }>(
    policy
      .command('dry-run')
      .description('would mail from --from to --to of --type be admitted now, and by which rule?')
      .requiredOption('--from <address>', 'sender agent address')
      .requiredOption('--to <address>', 'recipient agent address')
      .requiredOption('--type <type>', 'ADMP message type')
      .option('--subject <subject>', 'subject')
      .option('--bytes <n>', 'message size', (v) => Number(v), 0),
    async (op, _args, o) => {
      if (!(Number.isInteger(o.bytes) && o.bytes >= 0))
        throw new AdmpError('bad_request', '--bytes is a non-negative integer');
      const d = await op.dryRun({
        from: o.from,
        to: o.to,
        type: o.type,
        bytes: o.bytes,
        ...(o.subject !== undefined ? { subject: o.subject } : {}),
      });
      return { json: d, text: d.allow ? `allowed by ${d.rule}` : `refused (${d.reason}): ${d.message}` };
    },
  );
}
