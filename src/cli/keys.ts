// `admp key create|import|list|revoke` and `admp sign` (docs/protocol.md §Tools).
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { AdmpError } from '../errors.js';
import { parseAddress } from '../core/address.js';
import { insertLocalKey, keyState, listAllKeys, pinPartnerKey, revokeKey, type AgentKeyRow } from '../db/keys.js';
import { createAgentKey, seedFromPem } from '../keys/private-key.js';
import { agentKeyTxtRecords } from '../keys/dns.js';
import { buildSignedMessage } from '../mail/signed-message.js';
import { withDb } from './agents.js';
import { print, table } from './output.js';

const keyJson = (k: AgentKeyRow, at: Date) => ({
  domain: k.domain, kid: k.kid, agent: k.agent, source: k.source, state: keyState(k, at),
  public_key: k.publicKey.toString('base64'), not_before: k.notBefore, not_after: k.notAfter, revoked_at: k.revokedAt,
});

/** Decodes a raw 32-byte public key given in base64 or base64url. */
function publicKeyArg(s: string): Buffer {
  const b = Buffer.from(s.trim(), /[-_]/.test(s) ? 'base64url' : 'base64');
  if (b.length !== 32 || !/^[A-Za-z0-9+/_-]{43}=?$/.test(s.trim())) throw new AdmpError('bad_request', 'the public key must be 32 bytes in base64');
  return b;
}

const dateArg = (s: string | undefined): Date | undefined => {
  if (s === undefined) return undefined;
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw new AdmpError('bad_request', `not a date: ${s}`);
  return d;
};

async function bodyArg(s: string): Promise<unknown> {
  const text = s.startsWith('@') ? await readFile(s.slice(1), 'utf8') : s;
  try {
    return JSON.parse(text);
  } catch {
    throw new AdmpError('invalid_json', '--body is not JSON');
  }
}

export function registerKeys(program: Command): void {
  const key = program.command('key').description('agent signing keys (Ed25519)');

  key.command('create <agent>')
    .description('create a key pair for a local agent: the private key goes to a file (mode 0600), the public key to agent_key')
    .option('--out <file>', 'private key file (default <data_dir>/keys/<agent>.<kid>.pem)')
    .option('--not-after <date>', 'the key expires at this time (ISO 8601)')
    .option('--json', 'print JSON')
    .action(async (agentArg: string, o: { out?: string; notAfter?: string; json?: boolean }) => {
      await withDb(async (db, config) => {
        const agent = parseAddress(agentArg.includes('@') ? agentArg : `${agentArg}@${config.domains[0]}`, 'agent');
        if (!config.domains.includes(agent.domain)) throw new AdmpError('bad_request', `${agent.domain} is not one of our domains (${config.domains.join(', ')})`);
        const k = await createAgentKey();
        const file = o.out ?? join(config.dataDir, 'keys', `${agent.address}.${k.kid}.pem`);
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        // 'wx': never overwrite an existing key file; 0600: only the owner may read the private key.
        await writeFile(file, k.privateKeyPem, { mode: 0o600, flag: 'wx' });
        let row: AgentKeyRow;
        try {
          row = await insertLocalKey(db, { agent: agent.address, kid: k.kid, publicKey: k.publicKey, notAfter: dateArg(o.notAfter) ?? null });
        } catch (err) {
          await unlink(file).catch(() => undefined);
          throw err;
        }
        const dns = agentKeyTxtRecords([row])[0]!;
        print(o.json, { ...keyJson(row, new Date()), private_key_file: file, dns_txt: dns },
          () => `created key ${row.kid} for ${row.agent}\nprivate key: ${file}\npublic key:  ${row.publicKey.toString('base64')}\nDNS TXT:     ${dns.name} "${dns.text}"`);
      });
    });

  key.command('import <agent-address> <kid> <public-key>')
    .description("pin a partner agent's public key (raw 32 bytes, base64)")
    .option('--not-after <date>', 'stop trusting the key at this time (ISO 8601)')
    .option('--json', 'print JSON')
    .action(async (agentArg: string, kid: string, pk: string, o: { notAfter?: string; json?: boolean }) => {
      await withDb(async (db, config) => {
        const agent = parseAddress(agentArg, 'agent-address');
        if (config.domains.includes(agent.domain)) throw new AdmpError('bad_request', `${agent.domain} is our domain: use \`admp key create\``);
        const row = await pinPartnerKey(db, { agent: agent.address, kid, publicKey: publicKeyArg(pk), notAfter: dateArg(o.notAfter) ?? null });
        print(o.json, keyJson(row, new Date()), () => `pinned key ${row.kid} for ${row.agent}`);
      });
    });

  key.command('list')
    .description('list keys: ours (local) and pinned partner keys')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withDb(async (db) => {
        const now = new Date();
        const rows = (await listAllKeys(db)).map((k) => keyJson(k, now));
        print(o.json, rows, () => table(rows, ['agent', 'kid', 'source', 'state', 'public_key', 'not_after']));
      });
    });

  key.command('revoke <domain> <kid>')
    .description('revoke the key (domain, kid) from now on')
    .option('--json', 'print JSON')
    .action(async (domain: string, kid: string, o: { json?: boolean }) => {
      await withDb(async (db) => {
        if (!(await revokeKey(db, domain, kid, new Date()))) throw new AdmpError('not_found', `no live key ${kid} in ${domain}`);
        print(o.json, { domain, kid, revoked: true }, () => `revoked key ${kid} of ${domain}`);
      });
    });

  program.command('sign')
    .description('print or write a signed agent message (.eml)')
    .requiredOption('--agent <address>', 'sending agent address')
    .requiredOption('--key <file>', 'private key PEM (PKCS#8 Ed25519)')
    .requiredOption('--kid <kid>', 'key id')
    .requiredOption('--to <address>', 'recipient agent address')
    .requiredOption('--type <type>', 'message type')
    .requiredOption('--body <json|@file>', 'message body: JSON text, or @file')
    .option('--subject <text>', 'subject')
    .option('--correlation-id <id>', 'correlation id')
    .option('--ttl-sec <n>', 'time to live in seconds', (v) => {
      if (!/^[1-9][0-9]*$/.test(v)) throw new AdmpError('bad_request', '--ttl-sec must be a positive integer');
      return Number(v);
    })
    .option('--out <file>', 'write the .eml here instead of printing it')
    .option('--json', 'print JSON ({message_id, file} or {message_id, eml})')
    .action(async (o: { agent: string; key: string; kid: string; to: string; type: string; body: string; subject?: string; correlationId?: string; ttlSec?: number; out?: string; json?: boolean }) => {
      const seed = seedFromPem(await readFile(o.key, 'utf8'));
      const m = await buildSignedMessage(
        { to: o.to, type: o.type, subject: o.subject, body: await bodyArg(o.body), correlation_id: o.correlationId, ttl_sec: o.ttlSec },
        { agent: o.agent, kid: o.kid, seed });
      if (o.out) {
        await writeFile(o.out, m.eml);
        print(o.json, { message_id: m.messageId, file: o.out }, () => `wrote ${o.out} (Message-ID ${m.messageId})`);
      } else if (o.json) {
        print(true, { message_id: m.messageId, eml: m.eml.toString('utf8') }, () => '');
      } else {
        process.stdout.write(m.eml);
      }
    });
}
