// Reads what the installer needs from a mailcow-dockerized checkout (mailcow.conf,
// .env, docker-compose.yml) and refuses anything that is not one. Pure: the caller
// passes the file contents (null when missing).
import { parseDocument } from 'yaml';
import { InstallError } from './install-error.js';
import {
  MAILCOW_COMPOSE,
  MAILCOW_CONF,
  MAILCOW_ENV,
  MAILCOW_NETWORK,
  OVERRIDE_FILE,
  POSTFIX_SERVICE,
  RSPAMD_SERVICE,
} from './layout.js';

export interface CheckoutFiles {
  readonly conf: string | null;
  readonly env: string | null;
  readonly compose: string | null;
  /** The target of .env when it is a symlink to nothing (then `env` is null). */
  readonly envDangling?: string;
}

export interface MailcowInfo {
  readonly hostname: string;
  /** Compose project: the value of the com.docker.compose.project label. */
  readonly project: string;
  readonly ipv4Network: string;
  /** `docker compose` (native) or `docker-compose` (standalone), from DOCKER_COMPOSE_VERSION. */
  readonly composeCommand: readonly string[];
  readonly httpsPort: string;
  readonly vars: ReadonlyMap<string, string>;
}

/** KEY=VALUE lines as Compose and bash read mailcow.conf (comments, blank lines, simple quotes). */
export function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    const q = value[0];
    if ((q === '"' || q === "'") && value.lastIndexOf(q) > 0) value = value.slice(1, value.lastIndexOf(q));
    else value = value.replace(/\s+#.*$/, '').trim();
    vars.set(m[1]!, value);
  }
  return vars;
}

function requireCompose(text: string | null): void {
  if (text === null) throw new InstallError(`not a Mailcow checkout: ${MAILCOW_COMPOSE} is missing`);
  const doc = parseDocument(text);
  if (doc.errors.length > 0)
    throw new InstallError(
      `not a Mailcow checkout: cannot parse it (${doc.errors[0]!.message.split('\n')[0]})`,
      MAILCOW_COMPOSE,
    );
  const services = doc.getIn(['services']) as { has?: (k: string) => boolean } | undefined;
  const networks = doc.getIn(['networks']) as { has?: (k: string) => boolean } | undefined;
  for (const s of [POSTFIX_SERVICE, RSPAMD_SERVICE]) {
    if (!services?.has?.(s)) throw new InstallError(`not a Mailcow checkout: no service ${s}`, MAILCOW_COMPOSE);
  }
  if (!networks?.has?.(MAILCOW_NETWORK))
    throw new InstallError(`not a Mailcow checkout: no network ${MAILCOW_NETWORK}`, MAILCOW_COMPOSE);
}

/**
 * Compose reads .env (Mailcow: a symlink to mailcow.conf); a COMPOSE_FILE there that
 * does not list the override means Compose would never load the bridge service.
 */
function requireOverrideLoaded(vars: ReadonlyMap<string, string>): void {
  const composeFile = vars.get('COMPOSE_FILE');
  if (composeFile === undefined || composeFile === '') return;
  const sep = vars.get('COMPOSE_PATH_SEPARATOR') || ':';
  const listed = composeFile.split(sep).some((p) => p.trim().replace(/^.*\//, '') === OVERRIDE_FILE);
  if (!listed) {
    throw new InstallError(
      `COMPOSE_FILE=${composeFile} hides ${OVERRIDE_FILE}, so Compose would not start the bridge; add ${OVERRIDE_FILE} to COMPOSE_FILE or remove COMPOSE_FILE`,
      MAILCOW_CONF,
    );
  }
}

export function inspectCheckout(files: CheckoutFiles): MailcowInfo {
  if (files.conf === null)
    throw new InstallError(
      `not a Mailcow checkout: ${MAILCOW_CONF} is missing (run generate_config.sh first, or pass the right --mailcow-dir)`,
    );
  // Compose reads .env and stops at a dangling one; so would every Mailcow script.
  if (files.envDangling !== undefined)
    throw new InstallError(
      `${MAILCOW_ENV} is a symlink to ${files.envDangling}, which does not exist; in a Mailcow checkout it links to ${MAILCOW_CONF} (ln -sf ${MAILCOW_CONF} ${MAILCOW_ENV})`,
      MAILCOW_ENV,
    );
  requireCompose(files.compose);
  // .env wins where both define a key: it is the file Compose itself reads.
  const vars = new Map([...parseEnvFile(files.conf), ...(files.env !== null ? parseEnvFile(files.env) : [])]);
  const hostname = vars.get('MAILCOW_HOSTNAME') ?? '';
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i.test(hostname)) {
    throw new InstallError(`MAILCOW_HOSTNAME is missing or not a host name ("${hostname}")`, MAILCOW_CONF);
  }
  requireOverrideLoaded(vars);
  const ipv4Network = vars.get('IPV4_NETWORK') || '172.22.1';
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ipv4Network))
    throw new InstallError(`IPV4_NETWORK must be three octets like 172.22.1 ("${ipv4Network}")`, MAILCOW_CONF);
  return {
    hostname: hostname.toLowerCase(),
    // generate_config.sh's default; Compose lower-cases project names.
    project: (vars.get('COMPOSE_PROJECT_NAME') || 'mailcowdockerized').toLowerCase(),
    ipv4Network,
    composeCommand: vars.get('DOCKER_COMPOSE_VERSION') === 'standalone' ? ['docker-compose'] : ['docker', 'compose'],
    httpsPort: vars.get('HTTPS_PORT') || '443',
    vars,
  };
}
