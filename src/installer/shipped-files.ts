// The Rspamd and Postfix files this repository ships (rspamd/, postfix/), turned into
// what goes into the Mailcow checkout. Only the values that vary are filled in: the
// @ADMP_…@ placeholders of the shipped templates, and the next hop per mode.
import { InstallError } from './install-error.js';
import { BLOCK_ID, BRIDGE_URL, LMTP_NEXTHOP, SHIPPED, type ShippedName } from './layout.js';
import { assertBlock, renderBlock } from './text-block.js';

export type ShippedFiles = Readonly<Record<ShippedName, string>>;

export const HASH_STYLE = { comment: '#' } as const;
export const LUA_STYLE = { comment: '--' } as const;

/** Postfix transport(5) escaping of a domain inside the pcre pattern. */
const regexEscape = (s: string): string => s.replace(/[.\\+*?^$()[\]{}|/]/g, '\\$&');

/** Fills @ADMP_…@ placeholders; comment lines (#) stay as shipped, they only explain them. */
function fill(template: string, source: string, values: Record<string, string>): string {
  return template
    .split('\n')
    .map((line) =>
      line.trimStart().startsWith('#')
        ? line
        : line.replace(/@(ADMP_[A-Z_]+)@/g, (whole, name: string) => {
            const v = values[name];
            if (v === undefined) throw new InstallError(`unknown placeholder ${whole}`, source);
            return v;
          }),
    )
    .join('\n');
}

export interface PluginValues {
  readonly domain: string;
  readonly token: string;
  readonly timeoutSec: number;
}

/** local.d/agents_bridge.conf: the module section body with URL, token, domain and timeout. */
export function renderPluginConf(shipped: ShippedFiles, v: PluginValues): string {
  return fill(shipped.pluginConf, SHIPPED.pluginConf, {
    ADMP_BRIDGE_URL: BRIDGE_URL,
    ADMP_INGRESS_TOKEN: v.token,
    ADMP_AGENTS_DOMAIN: v.domain,
    ADMP_BRIDGE_TIMEOUT: String(v.timeoutSec),
  });
}

/**
 * The transport block for custom_transport.pcre: the agents domain goes to the bridge's LMTP
 * listener. In mode both that is also where mail the Rspamd plugin did not take (module
 * disabled, a bug) goes, instead of looping back to Mailcow as a relay domain.
 */
export function renderTransportBlock(shipped: ShippedFiles, domain: string): string {
  const filled = fill(shipped.transport, SHIPPED.transport, {
    ADMP_AGENTS_DOMAIN_REGEX: regexEscape(domain),
    ADMP_AGENTS_DOMAIN: domain,
  });
  if (!filled.includes(LMTP_NEXTHOP))
    throw new InstallError(`no ${LMTP_NEXTHOP} next hop in the shipped template`, SHIPPED.transport);
  assertBlock(filled, HASH_STYLE, SHIPPED.transport);
  return filled;
}

/** override.d/actions.conf block: the `discard` action the plugin needs, as shipped. */
export function renderActionsBlock(shipped: ShippedFiles): string {
  return renderBlock(shipped.actions, HASH_STYLE);
}

/**
 * local.d/rspamd.lua block. rspamd dofile()s this file after Mailcow's rules; it loads
 * the plugin from local.d/ with its section read from local.d/agents_bridge.conf.
 * Why not plugins.d/ + rspamd.conf.local (Mailcow's documented way): neither is in
 * Mailcow's .gitignore, and rspamd only includes local.d/<module>.conf for the modules
 * it ships (checked with rspamadm configdump on 3.4: "disabled (unconfigured)").
 */
export function renderLoaderBlock(): string {
  return renderBlock(
    `do
  local ucl = require "ucl"
  local dir = rspamd_paths['LOCAL_CONFDIR'] .. '/local.d/'
  local parser = ucl.parser()
  local ok, err = parser:parse_file(dir .. 'agents_bridge.conf')
  if not ok then error('${BLOCK_ID}: local.d/agents_bridge.conf: ' .. tostring(err)) end
  local opts = parser:get_object()
  -- No UCL file can add a top-level section from local.d/, and the plugin reads its
  -- section while loading: get_all_opt answers for it until the plugin is loaded.
  local cfg = getmetatable(rspamd_config)
  local get_all_opt = cfg.get_all_opt
  cfg.get_all_opt = function(self, name)
    if name == 'agents_bridge' then return opts end
    return get_all_opt(self, name)
  end
  local loaded, load_err = pcall(dofile, dir .. 'agents_bridge.lua')
  cfg.get_all_opt = get_all_opt
  if not loaded then error('${BLOCK_ID}: local.d/agents_bridge.lua: ' .. tostring(load_err)) end
end
`,
    LUA_STYLE,
  );
}
