// admp agent add | list | cert add|list|remove, admp token rotate
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { AdmpError } from '../errors.js';
import { parseBinding, spkiPin, type CertBinding } from '../core/client-cert.js';
import { adminAction, listCommand, operatorAction } from './admin-action.js';
import { table } from './output.js';
import type { Operator } from './operator.js';

export function registerAgents(program: Command): void {
  const agent = program.command('agent').description('manage local agents');
  operatorAction<{ domain?: string }>(
    agent
      .command('add <id>')
      .description('create an agent; prints its bearer token and HMAC secret once')
      .option('--domain <domain>', 'agents domain (default: the first of ADMP_DOMAINS)'),
    async (op, [id], opts) => {
      const a = await op.addAgent(id!, opts.domain);
      return {
        json: a,
        text: `agent ${a.address} created\ntoken:       ${a.token}\nhmac secret: ${a.hmac_secret}\n(shown once; store them now)`,
      };
    },
  );
  listCommand(operatorAction, agent, 'list agents', (op: Operator) => op.listAgents(), [
    'id',
    'address',
    'status',
    'created_at',
  ]);
  registerCertBindings(agent);

  operatorAction<{ hmac?: boolean }>(
    program
      .command('token')
      .description('manage agent credentials')
      .command('rotate <id>')
      .description('revoke the current bearer token and issue a new one')
      .option('--hmac', 'rotate the HMAC secret as well'),
    async (op, [id], opts) => {
      const { address: _, ...creds } = await op.rotate(id!, opts.hmac === true);
      const text = Object.entries(creds)
        .filter(([k]) => k !== 'id')
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n');
      return { json: creds, text };
    },
  );
}

interface BindingOptions {
  cert?: string;
  spki?: string;
  subject?: string;
}

/** Exactly one of --cert (its SPKI pin), --spki, --subject. */
function bindingFrom(opts: BindingOptions): CertBinding {
  const given = [opts.cert, opts.spki, opts.subject].filter((x) => x !== undefined);
  if (given.length !== 1) throw new AdmpError('bad_request', 'give exactly one of --cert, --spki or --subject');
  if (opts.spki !== undefined) return parseBinding('spki', opts.spki);
  if (opts.subject !== undefined) return parseBinding('subject', opts.subject);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(opts.cert!));
  } catch (err) {
    throw new AdmpError('bad_request', `--cert ${opts.cert}: not a PEM certificate (${(err as Error).message})`);
  }
  return { kind: 'spki', value: spkiPin(cert) };
}

function registerCertBindings(agent: Command): void {
  const cert = agent
    .command('cert')
    .description('bind agents to client certificates (mutual TLS, ADMP_HTTP_TLS_CLIENT_CA)');
  const which = (c: Command): Command =>
    c
      .option('--cert <pem>', "the client certificate file (binds its public key's SPKI pin)")
      .option('--spki <pin>', 'base64 SHA-256 of the DER SubjectPublicKeyInfo (RFC 7469 pin-sha256)')
      .option('--subject <dn>', 'the certificate subject, e.g. "CN=alice, O=Example" (attributes in any order)');
  adminAction<BindingOptions>(
    which(cert.command('add <id>')).description(
      'require this client certificate (besides its credential) on every API call of the agent',
    ),
    async (admin, [id], opts) => {
      const b = bindingFrom(opts);
      await admin.bindClientCert(id!, b);
      return { json: { agent: id, ...b }, text: `agent ${id} bound to client certificate ${b.kind} ${b.value}` };
    },
  );
  adminAction<BindingOptions>(
    which(cert.command('remove <id>')).description('remove a binding (an agent with none needs no certificate)'),
    async (admin, [id], opts) => {
      const b = bindingFrom(opts);
      await admin.unbindClientCert(id!, b);
      return { json: { agent: id, removed: b }, text: `removed ${b.kind} ${b.value} from agent ${id}` };
    },
  );
  adminAction(cert.command('list [id]').description('list client certificate bindings'), async (admin, [id]) => {
    const rows = await admin.clientCertBindings(id);
    return {
      json: rows,
      text: table(
        rows.map((r) => ({ ...r })),
        ['agent_id', 'kind', 'value', 'created_at'],
      ),
    };
  });
}
