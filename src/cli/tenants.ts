// admp tenant add|list|remove and admp address create|list|revoke: tenant subdomains
// (under a wildcard of ADMP_DOMAINS) and address tokens, locally or through the admin API.
import type { Command } from 'commander';
import { listCommand, operatorAction } from './admin-action.js';
import type { Operator } from './operator.js';
import { table } from './output.js';

export function registerTenants(program: Command): void {
  const tenant = program
    .command('tenant')
    .description('manage tenants: subdomains under a wildcard of ADMP_DOMAINS, each with agents of its own');
  operatorAction(
    tenant
      .command('add <name>')
      .description('create a tenant: a label (acme → acme.<the first wildcard domain>) or its whole subdomain'),
    async (op, [name]) => {
      const t = await op.addTenant(name!);
      return {
        json: t,
        text: `tenant ${t.domain} created\nadd its agents with: admp agent add <id> --domain ${t.domain}`,
      };
    },
  );
  listCommand(operatorAction, tenant, 'list tenants', (op: Operator) => op.listTenants(), [
    'domain',
    'agents',
    'created_at',
  ]);
  operatorAction(
    tenant.command('remove <name>').description('remove a tenant that has no agents (its mail is refused 550 5.1.2)'),
    async (op, [name]) => {
      const removed = await op.removeTenant(name!);
      return { json: { removed }, text: `tenant ${removed} removed` };
    },
  );

  const address = program
    .command('address')
    .description('manage address tokens: unguessable, revocable addresses that reach an agent without naming it');
  operatorAction(
    address.command('create <agent>').description('issue a new address token (t-<token>@<the agent domain>)'),
    async (op, [agent]) => {
      const a = await op.createAddress(agent!);
      return { json: a, text: a.address };
    },
  );
  operatorAction(
    address.command('list [agent]').description("list address tokens (all, or one agent's)"),
    async (op, [agent]) => {
      const rows = await op.listAddresses(agent);
      return { json: rows, text: table(rows, ['address', 'agent', 'created_at', 'revoked_at']) };
    },
  );
  operatorAction(
    address.command('revoke <address>').description('revoke an address token: mail to it is refused 550 5.1.6'),
    async (op, [addr]) => {
      await op.revokeAddress(addr!);
      return { json: { revoked: addr }, text: `${addr} revoked` };
    },
  );
}
