// admp messages (search) and admp dead redrive | delete: the operator's queue views,
// locally or through a server's admin API (ADMP_URL), like the console.
import type { Command } from 'commander';
import { operatorAction } from './admin-action.js';
import { table } from './output.js';

const FILTERS = ['agent', 'status', 'channel', 'sender', 'correlationId', 'after', 'before', 'limit', 'cursor'];

export function registerMessages(program: Command): void {
  operatorAction<Record<string, string | undefined>>(
    program
      .command('messages')
      .description('search messages, newest first (every filter is index-backed)')
      .option('--agent <id>', 'recipient inbox')
      .option('--status <status>', 'queued, sent, delivered, leased, acked, failed or dead')
      .option('--channel <channel>', 'http or smtp')
      .option('--sender <address>', 'sender address')
      .option('--correlation-id <id>', 'correlation id')
      .option('--after <time>', 'created at or after (RFC 3339)')
      .option('--before <time>', 'created before (RFC 3339)')
      .option('--limit <n>', 'rows per page (1-200)', '50')
      .option('--cursor <cursor>', 'the next page of an earlier search'),
    async (op, _args, o) => {
      // The admin API's query names; checked against its schema on either path.
      const query = Object.fromEntries(
        FILTERS.flatMap((k) => (o[k] === undefined ? [] : [[k === 'correlationId' ? 'correlation_id' : k, o[k]!]])),
      );
      const page = await op.search(query);
      const text = [
        table(page.messages, ['created_at', 'id', 'to_agent_id', 'from_agent', 'type', 'status', 'correlation_id']),
        ...(page.next_cursor ? [`next page: --cursor ${page.next_cursor}`] : []),
      ].join('\n');
      return { json: page, text };
    },
  );

  const dead = program.command('dead').description('dead letters of any inbox');
  operatorAction(
    dead
      .command('redrive <agent> <ids...>')
      .description('put dead letters back in their inbox with a fresh attempt count and TTL'),
    async (op, [agent, ...ids]) => {
      const done = await op.redrive(ids.map((id) => ({ id, agent: agent! })));
      return {
        json: { redriven: done },
        text: done.length ? `redriven: ${done.join(' ')}` : 'no dead letter among them',
      };
    },
  );
  operatorAction(
    dead.command('delete <agent> <ids...>').description('delete dead letters for good'),
    async (op, [agent, ...ids]) => {
      const done = await op.deleteDead(ids.map((id) => ({ id, agent: agent! })));
      return {
        json: { deleted: done },
        text: done.length ? `deleted: ${done.join(' ')}` : 'no dead letter among them',
      };
    },
  );
}
