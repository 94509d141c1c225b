// admp policy add | list | remove: the run-time policy rules (policy_rule table).
// Rules of the policy file (ADMP_POLICY_FILE) come first; see docs/policy.md.
import type { Command } from 'commander';
import { AdmpError } from '../errors.js';
import { listCommand, operatorAction } from './admin-action.js';
import type { Operator } from './operator.js';
import { RateQuotaSchema, type QuotaPer } from '../core/policy.js';
import type { Rule } from '../http/admin/schemas.js';

const collect = (v: string, acc: string[]) => [...acc, v];

const QUOTA_PER: readonly QuotaPer[] = RateQuotaSchema.properties.per.anyOf.map((l) => l.const);

/** A limit rule's quota as `admp policy list` shows it: `60/60s burst 10 per sender_domain`. */
const quotaText = (r: Rule): string =>
  `${r.quota_limit}/${r.quota_window_sec}s${r.quota_burst !== null ? ` burst ${r.quota_burst}` : ''} per ${r.quota_per}`;

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('manage delivery policy rules');
  operatorAction<{
    from: string;
    to: string;
    type: string[];
    subject?: string;
    maxBytes?: number;
    action: string;
    per?: string;
    limit?: number;
    window?: number;
    burst?: number;
  }>(
    policy
      .command('add')
      .description('add a rule: who may send what to whom (first match wins), or a rate quota (--action limit)')
      .requiredOption('--from <glob>', 'sender agent address glob, e.g. "*@agents.partner.example"')
      .requiredOption('--to <glob>', 'recipient agent address glob')
      .option('--type <glob>', 'ADMP type glob (repeatable)', collect, [])
      .option('--subject <glob>', 'subject glob')
      .option('--max-bytes <n>', 'largest message admitted', (v) => Number(v))
      .option(
        '--action <allow|deny|limit>',
        'what a match does (limit: count it against --limit per --window)',
        'allow',
      )
      .option('--per <key>', 'limit: counted per sender, sender_domain, recipient, pair or correlation')
      .option('--limit <n>', 'limit: messages per window', (v) => Number(v))
      .option('--window <sec>', 'limit: the window in seconds', (v) => Number(v))
      .option('--burst <n>', 'limit: messages admitted at once (default: --limit)', (v) => Number(v)),
    async (op, _args, o) => {
      if (o.action !== 'allow' && o.action !== 'deny' && o.action !== 'limit')
        throw new AdmpError('bad_request', '--action is allow, deny or limit');
      const positive = (v: number | undefined, name: string) => {
        if (v !== undefined && !(Number.isInteger(v) && v > 0))
          throw new AdmpError('bad_request', `${name} is a positive integer`);
      };
      positive(o.maxBytes, '--max-bytes');
      positive(o.limit, '--limit');
      positive(o.window, '--window');
      positive(o.burst, '--burst');
      const per = o.per as QuotaPer | undefined;
      if (per !== undefined && !QUOTA_PER.includes(per))
        throw new AdmpError('bad_request', `--per is one of ${QUOTA_PER.join(', ')}`);
      const quotaGiven = per !== undefined || o.limit !== undefined || o.window !== undefined || o.burst !== undefined;
      if (quotaGiven && (per === undefined || o.limit === undefined || o.window === undefined))
        throw new AdmpError('bad_request', 'a quota needs --per, --limit and --window');
      const row = await op.addRule({
        from: o.from,
        to: o.to,
        types: o.type,
        ...(o.subject !== undefined ? { subject: o.subject } : {}),
        ...(o.maxBytes !== undefined ? { max_bytes: o.maxBytes } : {}),
        action: o.action,
        ...(per !== undefined && o.limit !== undefined && o.window !== undefined
          ? {
              quota: {
                per,
                limit: o.limit,
                window_sec: o.window,
                ...(o.burst !== undefined ? { burst: o.burst } : {}),
              },
            }
          : {}),
      });
      return {
        json: row,
        text: `rule ${row.id} added: ${row.action} ${row.from_glob} -> ${row.to_glob}${row.quota_per ? ` ${quotaText(row)}` : ''}`,
      };
    },
  );
  listCommand(
    operatorAction,
    policy,
    'list run-time rules',
    (op: Operator) => op.listRules(),
    ['id', 'action', 'from_glob', 'to_glob', 'types', 'subject', 'max_bytes', 'quota'],
    (r) => ({ ...r, types: r.types.join(','), quota: r.quota_per ? quotaText(r) : '' }),
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
