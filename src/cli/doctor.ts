// admp doctor: checks the installation end to end (README, Operations: "admp doctor").
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { doctor, type DoctorFlags } from '../doctor/doctor.js';
import { formatResult } from '../doctor/report.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the installation end to end: database, bridge, Postfix, Rspamd, DNS, keys, and a test message')
    .option('--json', 'print JSON')
    .option('--domain <domain>', 'agents domain to check (default: the first of ADMP_DOMAINS)')
    .option('--bridge-url <url>', 'base URL of the bridge (default: from ADMP_HTTP_LISTEN)')
    .option('--mailcow-dir <dir>', 'Mailcow checkout: run the Postfix, Rspamd and DKIM checks in its containers')
    .option('--postfix-config-dir <dir>', 'Postfix configuration directory (without Docker)')
    .option('--rspamd-controller <host:port>', 'Rspamd controller (without Docker)')
    .option('--rspamd-password <password>', 'Rspamd controller password, if it asks for one')
    .option('--rspamd-symbol <symbol>', "the plugin's symbol", 'AGENTS_BRIDGE')
    .option('--smtp <host:port>', 'MTA that receives the test message', '127.0.0.1:25')
    .option('--dkim-key <file>', "PEM private DKIM key of the agents domain (default with --mailcow-dir: Mailcow's)")
    .option('--dkim-selector <selector>', 'selector of --dkim-key', 'dkim')
    .option('--timeout <seconds>', 'how long to wait for the test message', '30')
    .option(
      '--standalone <host[:port]>',
      'a bare server (no Mailcow): check the SMTP edge at host (port 25), its certificate and the MX/A/PTR/SPF/DMARC records',
    )
    .option(
      '--ca-file <file>',
      "with --standalone: PEM CA the edge's certificate must chain to (default: the system's)",
    )
    .option('--jwks-address <ip>', 'connect to this address for the JWKS URL instead of resolving the agents domain')
    .action(async (opts: DoctorFlags & { json?: boolean }) => {
      const results = await doctor(loadConfig(), opts, {
        onResult: opts.json ? undefined : (r) => process.stdout.write(`${formatResult(r)}\n`),
      });
      const failed = results.filter((r) => !r.ok).length;
      if (opts.json) process.stdout.write(`${JSON.stringify({ ok: failed === 0, checks: results }, null, 2)}\n`);
      else
        process.stdout.write(
          failed === 0 ? 'all checks passed\n' : `${failed} check${failed === 1 ? '' : 's'} failed\n`,
        );
      process.exitCode = failed === 0 ? 0 : 1;
    });
}
