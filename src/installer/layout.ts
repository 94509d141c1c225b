// Every name the installer uses inside a Mailcow checkout, in one place. Each file path
// here is matched by Mailcow's .gitignore and is not tracked upstream, so update.sh
// (git commit -a, merge -Xtheirs) never touches it
// (test/installer/gitignore.test.ts proves it against the upstream .gitignore).

export const OVERRIDE_FILE = 'docker-compose.override.yml';
export const TRANSPORT_FILE = 'data/conf/postfix/custom_transport.pcre';
/** Plugin code: in local.d because plugins.d/ is not in Mailcow's .gitignore. */
export const RSPAMD_PLUGIN_FILE = 'data/conf/rspamd/local.d/agents_bridge.lua';
/** Module section body, read by the loader below (rspamd only includes local.d/<m>.conf for its own modules). */
export const RSPAMD_CONF_FILE = 'data/conf/rspamd/local.d/agents_bridge.conf';
/** rspamd's rules/rspamd.lua dofile()s $LOCAL_CONFDIR/local.d/rspamd.lua when it exists. */
export const RSPAMD_LOADER_FILE = 'data/conf/rspamd/local.d/rspamd.lua';
/** local.d/actions.conf is tracked by Mailcow; override.d/actions.conf is not and merges key by key. */
export const RSPAMD_ACTIONS_FILE = 'data/conf/rspamd/override.d/actions.conf';
/** What this installer created or patched, so uninstall can undo exactly that. */
export const STATE_FILE = 'data/conf/rspamd/local.d/admp-install-state.json';

/** Files that must exist for a directory to count as a Mailcow checkout. */
export const MAILCOW_CONF = 'mailcow.conf';
export const MAILCOW_ENV = '.env';
export const MAILCOW_COMPOSE = 'docker-compose.yml';

/** Compose services Mailcow defines and the installer acts on. */
export const POSTFIX_SERVICE = 'postfix-mailcow';
export const RSPAMD_SERVICE = 'rspamd-mailcow';
export const MAILCOW_NETWORK = 'mailcow-network';

/** Services the installer adds to the override; the -mailcow suffix follows Mailcow's naming. */
export const BRIDGE_SERVICE = 'admp-bridge-mailcow';
export const POSTGRES_SERVICE = 'admp-postgres-mailcow';
export const POSTGRES_VOLUME = 'admp-pg-vol-1';
/** The bridge's data directory (agents' private keys for outbound mail, ADMP_KEYS_DIR). */
export const BRIDGE_VOLUME = 'admp-bridge-vol-1';
export const BRIDGE_ALIAS = 'admp-bridge';
export const POSTGRES_ALIAS = 'admp-postgres';
export const BRIDGE_HTTP_PORT = 8080;
export const BRIDGE_LMTP_PORT = 2526;
export const BRIDGE_URL = `http://${BRIDGE_ALIAS}:${BRIDGE_HTTP_PORT}/ingress/rspamd`;
export const LMTP_NEXTHOP = `lmtp:inet:${BRIDGE_ALIAS}:${BRIDGE_LMTP_PORT}`;

/** Marker id of the text blocks the installer adds to files it does not own. */
export const BLOCK_ID = 'admp-bridge';

/** Shipped sources in this repository, copied (and templated) at install time. */
export const SHIPPED = {
  plugin: 'rspamd/agents_bridge.lua',
  pluginConf: 'rspamd/agents_bridge.conf',
  actions: 'rspamd/actions.conf',
  transport: 'postfix/custom_transport.pcre',
} as const;
export type ShippedName = keyof typeof SHIPPED;
