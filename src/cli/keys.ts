// `admp key create|rotate|dns|import|list|revoke` and `admp sign` (docs/protocol.md §Tools).
import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AdmpError } from '../errors.js';
import { withAdmin } from '../app/open.js';
import { DEFAULT_OVERLAP_SEC, MIN_OVERLAP_SEC, type AgentKeyRow } from '../admin/admin.js';
import { keyState } from '../keys/key-state.js';
import { seedFromPem } from '../keys/private-key.js';
import { agentKeyTxtRecords } from '../keys/dns.js';
import { buildSignedMessage } from '../mail/signed-message.js';
import { print, table } from './output.js';
import { clientTime } from '../core/time.js';
import { isOurDomain } from '../core/domains.js';

const keyJson = (k: AgentKeyRow, at: Date) => ({
  domain: k.domain,
  kid: k.kid,
  agent: k.agent,
  source: k.source,
  state: keyState(k, at),
  public_key: k.publicKey.toString('base64'),
  not_before: k.notBefore,
  not_after: k.notAfter,
  revoked_at: k.revokedAt,
});

/** Decodes a raw 32-byte public key given in base64 or base64url. */
function publicKeyArg(s: string): Buffer {
  const b = Buffer.from(s.trim(), /[-_]/.test(s) ? 'base64url' : 'base64');
  if (b.length !== 32 || !/^[A-Za-z0-9+/_-]{43}=?$/.test(s.trim()))
    throw new AdmpError('bad_request', 'the public key must be 32 bytes in base64');
  return b;
}

const dateArg = (s: string | undefined, field: string): Date | undefined =>
  s === undefined ? undefined : clientTime(s, field);

async function bodyArg(s: string): Promise<unknown> {
  const text = s.startsWith('@') ? await readFile(s.slice(1), 'utf8') : s;
  try {
    return JSON.parse(text);
  } catch {
    throw new AdmpError('invalid_json', '--body is not JSON');
  }
}

const TXT_TTL_SEC = 300;

/** A TXT value as zone-file strings: quoted, at most 255 bytes each (RFC 1035 §3.3.14). */
const zoneTxt = (text: string): string =>
  (text.match(/[\s\S]{1,255}/g) ?? ['']).map((c) => `"${c.replace(/["\\]/g, '\\$&')}"`).join(' ');

export function registerKeys(program: Command): void {
  const key = program.command('key').description('agent signing keys (Ed25519)');

  key
    .command('create <agent>')
    .description(
      'create a key pair for a local agent: the private key goes to a file (mode 0600), the public key to agent_key',
    )
    .option('--out <file>', 'private key file (default <keys_dir>/<agent>.<kid>.pem)')
    .option('--not-after <date>', 'the key expires at this time (ISO 8601)')
    .option('--json', 'print JSON')
    .action(async (agentArg: string, o: { out?: string; notAfter?: string; json?: boolean }) => {
      await withAdmin(async (admin) => {
        const { row, file } = await admin.createKey(agentArg, {
          out: o.out,
          notAfter: dateArg(o.notAfter, '--not-after') ?? null,
        });
        const dns = agentKeyTxtRecords([row])[0]!;
        print(
          o.json,
          { ...keyJson(row, new Date()), private_key_file: file, dns_txt: dns },
          () =>
            `created key ${row.kid} for ${row.agent}\nprivate key: ${file}\npublic key:  ${row.publicKey.toString('base64')}\nDNS TXT:     ${dns.name} "${dns.text}"`,
        );
      });
    });

  key
    .command('rotate <agent>')
    .description(
      'create a new key for a local agent; its other keys keep verifying for the overlap window, then expire',
    )
    .option(
      '--overlap <seconds>',
      `how long the old keys stay valid (at least ${MIN_OVERLAP_SEC})`,
      String(DEFAULT_OVERLAP_SEC),
    )
    .option('--json', 'print JSON')
    .action(async (agentArg: string, o: { overlap: string; json?: boolean }) => {
      await withAdmin(async (admin) => {
        const { row, file, retired, until } = await admin.rotateKey(agentArg, Number(o.overlap));
        print(
          o.json,
          {
            ...keyJson(row, new Date()),
            private_key_file: file,
            retiring: retired,
            retiring_at: retired.length > 0 ? until : null,
          },
          () =>
            `created key ${row.kid} for ${row.agent} (private key: ${file})\n${retired.length > 0 ? `old keys ${retired.join(', ')} stay valid until ${until.toISOString()}` : 'no older key to retire'}\nrun \`admp key dns ${row.agent}\` and publish the records`,
        );
      });
    });

  key
    .command('dns <agent-or-domain>')
    .description(
      "print the _agentkeys TXT records of an agent's (or a whole domain's) currently valid keys, in zone-file form",
    )
    .option('--json', 'print JSON')
    .action(async (arg: string, o: { json?: boolean }) => {
      await withAdmin(async (admin, config) => {
        const filter = isOurDomain(config.domains, arg) ? { domain: arg } : { agent: admin.localAgent(arg).address };
        const records = agentKeyTxtRecords(await admin.validKeys({ ...filter, source: 'local' }));
        print(o.json, records, () =>
          records.map((r) => `${r.name}. ${TXT_TTL_SEC} IN TXT ${zoneTxt(r.text)}`).join('\n'),
        );
      });
    });

  key
    .command('import <agent-address> <kid> <public-key>')
    .description("pin a partner agent's public key (raw 32 bytes, base64)")
    .option('--not-after <date>', 'stop trusting the key at this time (ISO 8601)')
    .option('--json', 'print JSON')
    .action(async (agentArg: string, kid: string, pk: string, o: { notAfter?: string; json?: boolean }) => {
      await withAdmin(async (admin) => {
        const row = await admin.pinPartnerKey(
          agentArg,
          kid,
          publicKeyArg(pk),
          dateArg(o.notAfter, '--not-after') ?? null,
        );
        print(o.json, keyJson(row, new Date()), () => `pinned key ${row.kid} for ${row.agent}`);
      });
    });

  key
    .command('list')
    .description('list keys: ours (local) and pinned partner keys')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withAdmin(async (admin) => {
        const now = new Date();
        const rows = (await admin.allKeys()).map((k) => keyJson(k, now));
        print(o.json, rows, () => table(rows, ['agent', 'kid', 'source', 'state', 'public_key', 'not_after']));
      });
    });

  key
    .command('revoke <agent-or-domain> [kid]')
    .description('revoke keys from now on: every key of an agent, one kid of an agent, or (domain, kid)')
    .option('--json', 'print JSON')
    .action(async (arg: string, kid: string | undefined, o: { json?: boolean }) => {
      await withAdmin(async (admin) => {
        if (kid !== undefined && !arg.includes('@')) {
          await admin.revokeKeys({ domain: arg, kid });
          print(o.json, { domain: arg, kid, revoked: true }, () => `revoked key ${kid} of ${arg}`);
          return;
        }
        const agent = admin.localAgent(arg);
        const revoked = await admin.revokeKeys({ agent: agent.address, kid });
        print(o.json, { agent: agent.address, revoked }, () => `revoked ${revoked.join(', ')} of ${agent.address}`);
      });
    });

  program
    .command('sign')
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
    .option(
      '--validity-sec <n>',
      'how long the receiver may first get the mail after signing (X-Agent-Expires; default: its own, 5 days)',
      (v) => {
        if (!/^[0-9]{1,9}$/.test(v))
          throw new AdmpError('bad_request', '--validity-sec must be a whole number of seconds');
        return Number(v);
      },
    )
    .option('--out <file>', 'write the .eml here instead of printing it')
    .option('--json', 'print JSON ({message_id, file} or {message_id, eml})')
    .action(
      async (o: {
        agent: string;
        key: string;
        kid: string;
        to: string;
        type: string;
        body: string;
        subject?: string;
        correlationId?: string;
        ttlSec?: number;
        validitySec?: number;
        out?: string;
        json?: boolean;
      }) => {
        const seed = seedFromPem(await readFile(o.key, 'utf8'));
        const m = await buildSignedMessage(
          {
            to: o.to,
            type: o.type,
            subject: o.subject,
            body: await bodyArg(o.body),
            correlation_id: o.correlationId,
            ttl_sec: o.ttlSec,
          },
          { agent: o.agent, kid: o.kid, seed },
          { validitySec: o.validitySec },
        );
        if (o.out) {
          await writeFile(o.out, m.eml);
          print(o.json, { message_id: m.messageId, file: o.out }, () => `wrote ${o.out} (Message-ID ${m.messageId})`);
        } else if (o.json) {
          print(true, { message_id: m.messageId, eml: m.eml.toString('utf8') }, () => '');
        } else {
          process.stdout.write(m.eml);
        }
      },
    );
}
