// A private Postfix on 127.0.0.1 for tests (research note mta.md §2): its own config dir, queue
// and log in a temp dir, nothing chrooted, no local delivery, nothing ever leaves the machine.
// Optionally with rspamd's proxy as milter (Mailcow's milter settings) and transports for
// chosen domains (e.g. LMTP to an in-process receiver).
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, isListening } from './ports.js';

const execFileAsync = promisify(execFile);

const REPO = join(dirname(new URL(import.meta.url).pathname), '..', '..');

/** postfix/custom_transport.pcre with the agents domain filled in, as the installer does. */
export function renderTransportBlock(domain: string): string {
  const regex = domain.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return readFileSync(join(REPO, 'postfix', 'custom_transport.pcre'), 'utf8').replaceAll(
    '@ADMP_AGENTS_DOMAIN_REGEX@',
    regex,
  );
}

export interface PostfixOptions {
  /** `inet:127.0.0.1:PORT` of rspamd's proxy worker, or null for no milter. */
  milter: string | null;
  /** Domains Postfix accepts mail for (everything else: 554 Relay access denied). */
  relayDomains: readonly string[];
  /** domain → nexthop, e.g. `{ 'agents.example.com': 'lmtp:inet:127.0.0.1:2526' }`. */
  transport?: Record<string, string>;
  /** Put every accepted message on hold, so the queue can be inspected and nothing is delivered. */
  hold?: boolean;
  /** Extra main.cf keys, applied last. */
  main?: Record<string, string>;
  /** The smtpd port (default: a free one); set it when another instance's transport must name it first. */
  port?: number;
  /** Extra master.cf lines, e.g. a second smtpd listener with its own `-o` overrides. */
  master?: readonly string[];
}

export interface QueuedMessage {
  queue_name: string;
  queue_id: string;
  sender: string;
  recipients: { address: string; delay_reason?: string }[];
}

export interface TestPostfix {
  readonly port: number;
  readonly dir: string;
  /** The Postfix log so far (maillog_file). */
  log(): string;
  /** `postqueue -j`: every message in any queue. */
  queue(): Promise<QueuedMessage[]>;
  /** `postcat -q`: envelope records and content of a queued message. */
  postcat(queueId: string): Promise<string>;
  /** `postqueue -f`: retry deferred mail now. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

// Debian's services with chroot = n everywhere (a chroot would need resolv.conf etc. copied in),
// plus postlog, which maillog_file needs.
const MASTER_SERVICES = `pickup     unix  n  -  n  60    1  pickup
cleanup    unix  n  -  n  -     0  cleanup
qmgr       unix  n  -  n  300   1  qmgr
tlsmgr     unix  -  -  n  1000? 1  tlsmgr
rewrite    unix  -  -  n  -     -  trivial-rewrite
bounce     unix  -  -  n  -     0  bounce
defer      unix  -  -  n  -     0  bounce
trace      unix  -  -  n  -     0  bounce
verify     unix  -  -  n  -     1  verify
flush      unix  n  -  n  1000? 0  flush
proxymap   unix  -  -  n  -     -  proxymap
proxywrite unix  -  -  n  -     1  proxymap
smtp       unix  -  -  n  -     -  smtp
relay      unix  -  -  n  -     -  smtp
showq      unix  n  -  n  -     -  showq
error      unix  -  -  n  -     -  error
retry      unix  -  -  n  -     -  error
discard    unix  -  -  n  -     -  discard
lmtp       unix  -  -  n  -     -  lmtp
anvil      unix  -  -  n  -     1  anvil
scache     unix  -  -  n  -     1  scache
postlog    unix-dgram n  -  n  -  1  postlogd
`;

function mainCf(dir: string, o: PostfixOptions): Record<string, string> {
  const m: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: join(dir, 'spool'),
    // Created by Postfix itself: a root-owned data_directory stops master (master.lock).
    data_directory: join(dir, 'data'),
    maillog_file: join(dir, 'postfix.log'),
    maillog_file_prefixes: `/var, /dev/stdout, ${dir}`,
    myhostname: 'mx.test.example',
    mydomain: 'test.example',
    myorigin: '$myhostname',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    mydestination: '',
    local_recipient_maps: '',
    alias_maps: '',
    alias_database: '',
    local_transport: 'error:5.1.1 local delivery disabled',
    relay_domains: o.relayDomains.join(' '),
    // Nothing leaves the machine: mail not routed by `transport` waits in the deferred queue.
    // (An error: transport would make smtpd refuse such recipients at RCPT time instead.)
    default_transport: 'smtp',
    relay_transport: 'relay',
    defer_transports: 'smtp relay',
    smtpd_relay_restrictions: 'reject_unauth_destination',
    smtpd_recipient_restrictions: 'reject_unauth_destination',
    // The default treats 127.0.0.1 as a local submitter and adds Message-Id/Date/From.
    local_header_rewrite_clients: '',
    // XCLIENT lets the test pose as a remote client (address, HELO, SASL login) from loopback.
    smtpd_authorized_xclient_hosts: '127.0.0.0/8',
    lmtp_send_xforward_command: 'yes',
    smtp_dns_support_level: 'disabled',
    queue_run_delay: '2s',
    minimal_backoff_time: '2s',
    maximal_backoff_time: '10s',
    biff: 'no',
  };
  if (o.transport && Object.keys(o.transport).length > 0) {
    // texthash: read directly, no postmap step.
    m.transport_maps = `texthash:${join(dir, 'etc', 'transport')}`;
  }
  if (o.milter) {
    // Mailcow's milter settings: a milter failure tempfails, so no mail bypasses rspamd.
    Object.assign(m, {
      smtpd_milters: o.milter,
      non_smtpd_milters: o.milter,
      milter_default_action: 'tempfail',
      milter_protocol: '6',
      milter_mail_macros: 'i {mail_addr} {client_addr} {client_name} {auth_authen}',
    });
  }
  if (o.hold) m.smtpd_end_of_data_restrictions = 'check_client_access static:HOLD';
  return { ...m, ...o.main };
}

export async function startPostfix(options: PostfixOptions): Promise<TestPostfix> {
  const dir = mkdtempSync(join(tmpdir(), 'admp-postfix-'));
  chmodSync(dir, 0o755); // Postfix's daemons run as the postfix user and must reach data_directory
  const etc = join(dir, 'etc');
  mkdirSync(etc);
  mkdirSync(join(dir, 'spool'));
  const port = options.port ?? (await freePort());
  writeFileSync(
    join(etc, 'main.cf'),
    Object.entries(mainCf(dir, options))
      .map(([k, v]) => `${k} = ${v}\n`)
      .join(''),
  );
  writeFileSync(
    join(etc, 'master.cf'),
    `127.0.0.1:${port} inet  n  -  n  -     -  smtpd\n${MASTER_SERVICES}${(options.master ?? []).map((l) => `${l}\n`).join('')}`,
  );
  writeFileSync(
    join(etc, 'transport'),
    Object.entries(options.transport ?? {})
      .map(([d, next]) => `${d} ${next}\n`)
      .join(''),
  );
  const postfix = (...args: string[]): Promise<{ stdout: string }> =>
    execFileAsync('postfix', ['-c', etc, ...args], { timeout: 30_000 });
  const logFile = join(dir, 'postfix.log');
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const stop = async (): Promise<void> => {
    await postfix('stop').catch(() => undefined);
    await waitMasterGone(join(dir, 'spool', 'pid', 'master.pid'));
    rmSync(dir, { recursive: true, force: true });
  };
  // Once, under CI load, `postfix start` failed in 2 s with "mail system startup failed"
  // and nothing from master in the log (a port conflict, by contrast, is logged: "fatal: bind
  // … Address already in use"). A second start a second later costs little.
  try {
    await postfix('check'); // creates the queue subdirectories and data_directory
    await postfix('start').catch(async () => {
      await new Promise((r) => setTimeout(r, 1000));
      return postfix('start');
    });
    await waitListening(port);
  } catch (err) {
    const detail = `${(err as { stderr?: string }).stderr ?? ''}${log()}`;
    await stop();
    throw new Error(`postfix did not start: ${(err as Error).message}\n${detail}`);
  }
  return {
    port,
    dir,
    log,
    async queue() {
      const { stdout } = await execFileAsync('postqueue', ['-c', etc, '-j']);
      return stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as QueuedMessage);
    },
    async postcat(queueId) {
      return (await execFileAsync('postcat', ['-c', etc, '-q', queueId])).stdout;
    },
    async flush() {
      await execFileAsync('postqueue', ['-c', etc, '-f']);
    },
    stop,
  };
}

async function waitListening(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await isListening(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

// `postfix stop` returns before master has exited; removing the queue under it breaks its exit.
async function waitMasterGone(pidFile: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
