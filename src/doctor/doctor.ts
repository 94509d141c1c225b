// Assembles the checks of `admp doctor` from the configuration and the command-line
// flags: Mailcow in Docker (--mailcow-dir: commands run in its containers), or the
// components named one by one (a non-Docker install, or the local test daemons).
import { readFile } from 'node:fs/promises';
import { isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';
import type { Config } from '../config.js';
import { parseListen } from '../config.js';
import { withAdmin } from '../app/open.js';
import {
  agentKeysTxtCheck,
  bridgeCheck,
  databaseCheck,
  jwksCheck,
  mxCheck,
  postfixCheck,
  rspamdCheck,
  type DoctorTargets,
} from './checks.js';
import { installedFilesCheck } from './installed-files.js';
import { roundTripCheck, type DkimKey } from './roundtrip.js';
import { standaloneChecks } from './standalone.js';
import { runChecks, type CheckResult } from './report.js';
import { containerCommand, localCommand, mailcowDkimKey, mailcowProject } from './targets.js';
import { POSTFIX_SERVICE, RSPAMD_SERVICE } from '../installer/layout.js';

export interface DoctorFlags {
  domain?: string;
  bridgeUrl?: string;
  mailcowDir?: string;
  postfixConfigDir?: string;
  rspamdController?: string;
  rspamdPassword?: string;
  rspamdSymbol?: string;
  smtp?: string;
  dkimKey?: string;
  dkimSelector?: string;
  timeout?: string;
  jwksAddress?: string;
  /** `host[:port]` of the SMTP edge: the bare-server checks instead of Postfix, Rspamd and the round trip. */
  standalone?: string;
  /** PEM file of the CA the edge's certificate must chain to (default: the system's CAs). */
  caFile?: string;
}

export interface DoctorDeps {
  readonly onResult?: (r: CheckResult) => void;
}

/** Connects the JWKS fetch to `address` whatever the name (split-horizon DNS, or no public DNS yet). */
function pinnedDispatcher(address: string): Agent {
  const family = isIP(address);
  if (family === 0) throw new Error(`--jwks-address must be an IP address, got "${address}"`);
  const lookup: LookupFunction = (_host, options, cb) => {
    if (options.all)
      (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else cb(null, address, family);
  };
  return new Agent({ connect: { lookup } });
}

const DEFAULT_BRIDGE = (c: Config) =>
  `http://${c.httpListen.host === '0.0.0.0' || c.httpListen.host === '' ? '127.0.0.1' : c.httpListen.host}:${c.httpListen.port}`;

async function dkimFrom(flags: DoctorFlags, domain: string, project: string | undefined): Promise<DkimKey | undefined> {
  if (flags.dkimKey)
    return { selector: flags.dkimSelector ?? 'dkim', privateKeyPem: await readFile(flags.dkimKey, 'utf8') };
  return project ? mailcowDkimKey(project, domain) : undefined;
}

export async function doctor(config: Config, flags: DoctorFlags, deps: DoctorDeps = {}): Promise<CheckResult[]> {
  if (!config.databaseUrl) throw new Error("admp doctor needs DATABASE_URL (the bridge's database)");
  const domain = (flags.domain ?? config.domains[0]!).toLowerCase();
  const project = flags.mailcowDir ? await mailcowProject(flags.mailcowDir) : undefined;
  return withAdmin(
    async (admin) => {
      const smtp = parseListen(flags.smtp ?? '127.0.0.1:25', '--smtp');
      const targets: DoctorTargets = {
        config,
        admin,
        domain,
        bridgeUrl: flags.bridgeUrl ?? DEFAULT_BRIDGE(config),
        postfix: project
          ? { run: await containerCommand(project, POSTFIX_SERVICE), args: [] }
          : flags.postfixConfigDir
            ? { run: localCommand, args: ['-c', flags.postfixConfigDir] }
            : undefined,
        rspamd: project
          ? {
              run: await containerCommand(project, RSPAMD_SERVICE),
              controller: '127.0.0.1:11334',
              password: flags.rspamdPassword,
              symbol: flags.rspamdSymbol ?? 'AGENTS_BRIDGE',
            }
          : flags.rspamdController
            ? {
                run: localCommand,
                controller: flags.rspamdController,
                password: flags.rspamdPassword,
                symbol: flags.rspamdSymbol ?? 'AGENTS_BRIDGE',
              }
            : undefined,
        dispatcher: flags.jwksAddress ? pinnedDispatcher(flags.jwksAddress) : undefined,
      };
      const base = [databaseCheck(admin), bridgeCheck(targets.bridgeUrl)];
      const published = [agentKeysTxtCheck(targets), jwksCheck(targets)];
      if (flags.standalone) {
        const edge = /^(.*?)(?::(\d{1,5}))?$/.exec(flags.standalone)!;
        return await runChecks(
          [
            ...base,
            ...standaloneChecks({
              config,
              domain,
              host: edge[1]!,
              ...(edge[2] ? { port: Number(edge[2]) } : {}),
              ...(flags.caFile ? { ca: await readFile(flags.caFile, 'utf8') } : {}),
            }),
            ...published,
          ],
          deps.onResult,
        );
      }
      return await runChecks(
        [
          ...(flags.mailcowDir ? [installedFilesCheck(flags.mailcowDir)] : []),
          ...base,
          postfixCheck(targets),
          rspamdCheck(targets),
          mxCheck(targets),
          ...published,
          roundTripCheck(targets, {
            smtp,
            dkim: await dkimFrom(flags, domain, project),
            timeoutMs: Number(flags.timeout ?? 30) * 1000,
          }),
        ],
        deps.onResult,
      );
    },
    { ...config, migrateOnStart: false },
  );
}
