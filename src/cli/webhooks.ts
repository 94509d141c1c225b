// admp webhook add | list | remove | enable: any agent's push endpoints (the operator's
// view; an agent manages its own with POST /v1/webhooks).
import type { Command } from 'commander';
import { adminAction } from './admin-action.js';
import { table } from './output.js';

export function registerWebhooks(program: Command): void {
  const webhook = program.command('webhook').description("push an agent's messages to a URL (signed webhooks)");
  adminAction<{ type?: string[]; secret?: string; ed25519?: boolean }>(
    webhook
      .command('add <agent> <url>')
      .description('register an endpoint; prints its signing secret once')
      .option('--type <type...>', 'push only messages of these types')
      .option('--secret <whsec>', 'the HMAC secret (whsec_ + base64); default: a new one')
      .option('--ed25519', 'also sign with a new Ed25519 key (v1a); prints its public key'),
    async (admin, [agent, url], opts) => {
      const e = await admin.webhooks.register(admin.localAgentId(agent!), {
        url: url!,
        ...(opts.type ? { types: opts.type } : {}),
        ...(opts.secret ? { secret: opts.secret } : {}),
        ...(opts.ed25519 ? { ed25519: true } : {}),
      });
      const lines = [`webhook ${e.id} for ${e.agent_id} → ${e.url}`, `secret:     ${e.secret}`];
      if (e.public_key) lines.push(`public key: ${e.public_key}`);
      return { json: e, text: [...lines, '(the secret is shown once; store it now)'].join('\n') };
    },
  );
  adminAction(
    webhook.command('list [agent]').description('endpoints (of one agent, or all) and why any is disabled'),
    async (admin, [agent]) => {
      const rows = await admin.webhooks.list(agent ? admin.localAgentId(agent) : undefined);
      return {
        json: rows,
        text: table(
          rows.map((r) => ({ ...r, types: r.types?.join(',') ?? '*', disabled: r.disabled_reason ?? '' })),
          ['id', 'agent_id', 'url', 'types', 'disabled'],
        ),
      };
    },
  );
  adminAction(webhook.command('remove <id>').description('remove an endpoint'), async (admin, [id]) => {
    await admin.webhooks.remove(id!);
    return { json: { removed: id }, text: `webhook ${id} removed` };
  });
  adminAction(
    webhook
      .command('enable <id>')
      .description('deliver to a disabled endpoint again (after a 410 or a refused address)'),
    async (admin, [id]) => {
      const e = await admin.webhooks.enable(id!);
      return { json: e, text: `webhook ${e.id} enabled` };
    },
  );
}
