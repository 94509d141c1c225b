--[[
ADMP agents_bridge: a postfilter that hands mail for the agents domains to the ADMP HTTP
bridge (POST /ingress/rspamd) and turns the bridge's answer into the message's fate:

  2xx                              -> discard (all recipients are agents), or milter del_rcpt
                                      of the agents recipients (mixed recipients)
  status in permanent_statuses,
  with the bridge's JSON error     -> reject with the bridge's smtp_message (554 5.7.1 via milter)
  anything else (a 404 from a misrouted proxy or a wrong path included), transport error,
  request not scheduled, Lua error -> soft reject (451 4.7.1): the sender retries, nothing is lost

Configuration: the `agents_bridge { }` section (see agents_bridge.conf and README.md).
Tested on rspamd 3.4. The APIs it uses (set_pre_result table form, rspamd_http.request,
set_milter_reply, has_pre_result, get_recipients 'orig') were read in the 4.1 source, not run there.
]]

if confighelp then
  return
end

local N = 'agents_bridge'

local rspamd_http = require "rspamd_http"
local rspamd_logger = require "rspamd_logger"
local rspamd_util = require "rspamd_util"
local lua_util = require "lua_util"
local lua_auth_results = require "lua_auth_results"
local ucl = require "ucl"

local settings = {
  symbol = 'AGENTS_BRIDGE',
  url = nil,
  token = nil,
  domains = {},
  -- Bases of the `*.base` entries: tenant subdomains (exactly one label more), as ADMP_DOMAINS.
  wildcards = {},
  domain_prefix = nil,
  -- Must stay well under the worker's task_timeout (Mailcow: 25 s), or the task times out
  -- first and the message takes its score-based action although the bridge may have stored it.
  timeout = 10.0,
  permanent_statuses = { 400, 403, 404, 413, 422 },
  reject_message = 'Agent mailbox refused the message',
  tempfail_message = 'Agent mailbox temporarily unavailable, try again later',
  -- RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including the code.
  max_smtp_message = 200,
}

-- Config checks are plain Lua on purpose: rspamd 3.4 ships `tableshape` only, 4.x ships
-- `lua_shape` and is phasing `tableshape` out, so neither is safe for a plugin meant for both.
-- UCL gives a single value where a list has one element (`domains = "a";`).
local function as_list(v)
  if type(v) == 'table' then return v end
  if v ~= nil then return { v } end
  return nil
end

local function is_domain(d)
  return type(d) == 'string' and d:match('^[%w][%w%.%-]*%.[%a][%w%-]*$') ~= nil
end

local checks = {
  symbol = function(v) return type(v) == 'string' and v:match('^[%u%d_]+$') ~= nil, 'an upper-case symbol name' end,
  url = function(v) return type(v) == 'string' and v:match('^https?://[^/@%s]+') ~= nil, 'an http(s) URL' end,
  token = function(v) return type(v) == 'string' and #v >= 16 and v:match('^[!-~]+$') ~= nil,
    'a printable secret of at least 16 characters' end,
  domains = function(v)
    local l = as_list(v)
    if not l then return false, 'a domain or a list of domains' end
    for _, d in ipairs(l) do
      local name = type(d) == 'string' and d:gsub('^%*%.', '', 1) or d
      if not is_domain(name) then return false, 'domain names or *.wildcards (got ' .. tostring(d) .. ')' end
    end
    return true
  end,
  domain_prefix = function(v) return type(v) == 'string' and v:match('^[%w%-]+%.$') ~= nil, 'a label followed by a dot, e.g. "agents."' end,
  timeout = function(v) return type(v) == 'number' and v > 0 and v <= 60, 'a number of seconds in (0, 60]' end,
  permanent_statuses = function(v)
    for _, s in ipairs(as_list(v)) do
      if type(s) ~= 'number' or s < 300 or s > 599 or s % 1 ~= 0 then return false, 'HTTP statuses 300..599' end
    end
    return true
  end,
  reject_message = function(v) return type(v) == 'string' and v ~= '', 'a non-empty text' end,
  tempfail_message = function(v) return type(v) == 'string' and v ~= '', 'a non-empty text' end,
  max_smtp_message = function(v) return type(v) == 'number' and v >= 20 and v <= 400, 'a length in 20..400' end,
}

local function has_placeholder(v)
  if type(v) == 'string' then return v:find('@ADMP_', 1, true) ~= nil end
  if type(v) == 'table' then
    for _, x in ipairs(v) do
      if has_placeholder(x) then return true end
    end
  end
  return false
end

-- Returns nil on success, or a description of the first problem.
local function configure(opts)
  for k, v in pairs(opts) do
    if has_placeholder(v) then return string.format('option "%s" still holds an installer placeholder', k) end
  end
  for k, v in pairs(opts) do
    if k ~= 'enabled' then
      local check = checks[k]
      if not check then return string.format('unknown option "%s"', k) end
      if k == 'timeout' and type(v) == 'string' then v = lua_util.parse_time_interval(v) end
      local ok, what = check(v)
      if not ok then return string.format('option "%s" must be %s', k, what) end
      settings[k] = v
    end
  end
  if not settings.url then return 'option "url" is required' end
  if not settings.token then return 'option "token" is required' end
  local domains, wildcards = {}, {}
  for _, d in ipairs(as_list(settings.domains)) do
    local base = d:lower():match('^%*%.(.+)$')
    if base then wildcards[base] = true else domains[d:lower()] = true end
  end
  settings.domains, settings.wildcards = domains, wildcards
  if next(domains) == nil and next(wildcards) == nil and not settings.domain_prefix then
    return 'set "domains" (or, explicitly, "domain_prefix")'
  end
  local permanent = {}
  for _, s in ipairs(as_list(settings.permanent_statuses)) do permanent[s] = true end
  settings.permanent_statuses = permanent
  return nil
end

local function is_agents_domain(domain)
  if type(domain) ~= 'string' then return false end
  domain = domain:lower()
  if settings.domains[domain] then return true end
  local base = domain:match('^[%w][%w%-]*%.(.+)$')
  if base and settings.wildcards[base] then return true end
  local prefix = settings.domain_prefix
  return prefix ~= nil and #domain > #prefix and domain:sub(1, #prefix) == prefix:lower()
end

-- HTTP header values and SMTP reply texts must be one line (RFC 9110 5.5, RFC 5321 4.2).
local function one_line(s)
  local flat = tostring(s or ''):gsub('%c+', ' ')
  return lua_util.str_trim(flat)
end

local function smtp_text(s)
  local t = one_line(s):gsub('[^ -~]', '?'):gsub('  +', ' ')
  if #t > settings.max_smtp_message then t = t:sub(1, settings.max_smtp_message) end
  return t
end

local auth_symbols = {
  spf = { 'R_SPF_ALLOW', 'R_SPF_FAIL', 'R_SPF_SOFTFAIL', 'R_SPF_NEUTRAL', 'R_SPF_DNSFAIL', 'R_SPF_PERMFAIL', 'R_SPF_NA' },
  dmarc = { 'DMARC_POLICY_ALLOW', 'DMARC_POLICY_ALLOW_WITH_FAILURES', 'DMARC_POLICY_REJECT', 'DMARC_POLICY_QUARANTINE',
    'DMARC_POLICY_SOFTFAIL', 'DMARC_BAD_POLICY', 'DMARC_DNSFAIL', 'DMARC_NA' },
  arc = { 'ARC_ALLOW', 'ARC_REJECT', 'ARC_INVALID', 'ARC_DNSFAIL', 'ARC_NA' },
}

-- The verdicts of this rspamd, never the message's own (forgeable) Authentication-Results.
local function auth_json(task)
  local out = { dkim = {} }
  for _, r in ipairs(task:get_dkim_results() or {}) do
    table.insert(out.dkim, { result = r.result, domain = r.domain, selector = r.selector })
  end
  for group, symbols in pairs(auth_symbols) do
    for _, sym in ipairs(symbols) do
      local res = task:get_symbol(sym)
      if res and res[1] then
        out[group] = { symbol = sym, options = res[1].options or {} }
        break
      end
    end
  end
  return ucl.to_format(out, 'json-compact')
end

local function set_result(task, action, message)
  -- Priority 3 (highest): an earlier `accept` (priority 1, e.g. Mailcow's postmaster rule)
  -- must not win over our discard, or the bridge's copy is delivered a second time.
  task:set_pre_result({ action = action, message = message, module = N, priority = 3 })
end

local function tempfail(task, reason)
  set_result(task, 'soft reject', settings.tempfail_message)
  task:insert_result(settings.symbol, 0.0, 'tempfail', one_line(reason))
end

-- Runs f under pcall: a Lua error in an rspamd callback is only logged by rspamd and the
-- message then takes its score-based action, i.e. it is delivered as if the bridge were absent.
local function guarded(task, where, f)
  local ok, err = pcall(f)
  if not ok then
    rspamd_logger.errx(task, '%s: error in %s: %s', N, where, err)
    local ok2, err2 = pcall(tempfail, task, 'lua error')
    if not ok2 then rspamd_logger.errx(task, '%s: cannot soft reject: %s', N, err2) end
  end
end

-- The text of the bridge's own refusal, or nil when the body is not one. The bridge
-- refuses with {"error": {"code": …}, "smtp_message": "5.x.y text"}; any other answer with
-- the same status (a proxy's 404 page, a wrong path) is not a verdict on the message.
local function bridge_refusal(body)
  -- rspamd has only the UCL parser (a superset of JSON that also knows macros), so only
  -- object texts are parsed, and only from the configured bridge.
  if type(body) ~= 'string' or not body:match('^%s*{') then return nil end
  local parser = ucl.parser()
  local ok = parser:parse_string(body)
  if not ok then return nil end
  local obj = parser:get_object()
  if type(obj) ~= 'table' or type(obj.error) ~= 'table' or type(obj.error.code) ~= 'string' then return nil end
  if type(obj.smtp_message) ~= 'string' then return nil end
  -- The milter always answers 554 5.7.1 (rspamd's fixed reject codes): the bridge's own
  -- enhanced code is dropped from the text so that the reply carries one code, not two.
  local text = smtp_text((obj.smtp_message:gsub('^%s*[245]%.%d%d?%d?%.%d%d?%d?%s+', '')))
  if text == '' then text = settings.reject_message end
  return text
end

local function on_response(task, ctx, err, code, body)
  local ms = string.format('%.0fms', (rspamd_util.get_time() - ctx.started) * 1000)
  if err then
    rspamd_logger.warnx(task, '%s: bridge unreachable after %s: %s', N, ms, err)
    return tempfail(task, err)
  end
  if code >= 200 and code < 300 then
    rspamd_logger.infox(task, '%s: bridge accepted %s (HTTP %s, %s)', N, table.concat(ctx.agents, ','), code, ms)
    task:insert_result(settings.symbol, 0.0, 'accepted', tostring(code))
    if ctx.others == 0 then
      return set_result(task, 'discard', 'Delivered to agents bridge')
    end
    -- One milter verdict covers the whole transaction, so the agents recipients are removed
    -- and the message continues for the others (Postfix logs them as canceled_recipient).
    local del = {}
    for _, addr in ipairs(ctx.agents) do table.insert(del, '<' .. addr .. '>') end
    return task:set_milter_reply({ del_rcpt = del })
  end
  local text = settings.permanent_statuses[code] and bridge_refusal(body)
  if text then
    rspamd_logger.infox(task, '%s: bridge refused %s (HTTP %s, %s): %s', N, table.concat(ctx.agents, ','), code, ms, text)
    -- With mixed recipients the whole message is refused: the sender learns of the refusal,
    -- and the other recipients are not delivered a copy the sender believes bounced.
    set_result(task, 'reject', text)
    return task:insert_result(settings.symbol, 0.0, 'rejected', tostring(code))
  end
  if settings.permanent_statuses[code] then
    rspamd_logger.warnx(task, '%s: HTTP %s after %s is not the bridge\'s refusal (no JSON error): check the url', N,
      code, ms)
  else
    rspamd_logger.warnx(task, '%s: bridge answered HTTP %s after %s', N, code, ms)
  end
  return tempfail(task, 'HTTP ' .. tostring(code))
end

-- rspamd's EMAIL_PLUS_ALIASES prefilter replaces tagged envelope addresses (a+tag@d becomes
-- a@d) and keeps the originals, flagged, at the front of the list, which 'orig' returns in
-- full. The bridge and the milter's del_rcpt need the addresses exactly as the client sent them.
local function original_recipients(task)
  local current = task:get_recipients('smtp') or {}
  local all = task:get_recipients({ 'smtp', 'orig' }) or current
  if #all <= #current then return all end
  local originals = {}
  for i = 1, #all - #current do originals[i] = all[i] end
  return originals
end

local function split_recipients(task)
  local agents, others = {}, 0
  for _, r in ipairs(original_recipients(task)) do
    if is_agents_domain(r.domain) then
      table.insert(agents, r.addr)
    else
      others = others + 1
    end
  end
  return agents, others
end

local function request_headers(task, agents)
  local from = ((task:get_from({ 'smtp', 'orig' }) or {})[1] or {}).addr or ''
  local ip = task:get_from_ip()
  local headers = {
    ['X-Envelope-From'] = from,
    ['X-Envelope-To'] = table.concat(agents, ','),
    ['X-Rspamd-Queue-Id'] = task:get_queue_id() or '',
    ['X-Rspamd-Client-Ip'] = (ip and ip:is_valid()) and tostring(ip) or '',
    ['X-Rspamd-Helo'] = task:get_helo() or '',
    ['X-Rspamd-User'] = task:get_user() or '',
    ['X-Rspamd-Authentication-Results'] = lua_auth_results.gen_auth_results(task) or '',
    ['X-Rspamd-Auth'] = auth_json(task),
  }
  for k, v in pairs(headers) do headers[k] = one_line(v) end
  headers['Authorization'] = 'Bearer ' .. settings.token
  return headers
end

local function bridge_symbol(task)
  local agents, others = split_recipients(task)
  if #agents == 0 then return end
  local has, action, _, module = task:has_pre_result()
  if has and (action == 'reject' or action == 'soft reject') then
    rspamd_logger.infox(task, '%s: not forwarding, %s already chose %s', N, module, action)
    return task:insert_result(settings.symbol, 0.0, 'skipped', action)
  end
  local ctx = { agents = agents, others = others, started = rspamd_util.get_time() }
  local scheduled = rspamd_http.request({
    task = task,
    url = settings.url,
    method = 'POST',
    body = task:get_content(),
    mime_type = 'message/rfc822',
    headers = request_headers(task, agents),
    timeout = settings.timeout,
    callback = function(err, code, body)
      guarded(task, 'http callback', function() on_response(task, ctx, err, code, body) end)
    end,
  })
  -- false: the request was never started and the callback will never run.
  if not scheduled then tempfail(task, 'request not scheduled') end
end

local opts = rspamd_config:get_all_opt(N)
if not opts then
  lua_util.disable_module(N, 'config')
  return
end
local problem = configure(opts)
if problem then
  rspamd_logger.errx(rspamd_config, '%s: bad configuration, module disabled: %s', N, problem)
  lua_util.disable_module(N, 'config')
  return
end

rspamd_config:register_symbol({
  name = settings.symbol,
  type = 'postfilter',
  callback = function(task) guarded(task, 'symbol callback', function() bridge_symbol(task) end) end,
  score = 0.0,
  group = 'agents',
  -- ignore_passthrough: run even after an earlier module set a pre-result (accept), see README.
  flags = 'empty,ignore_passthrough,explicit_disable',
  priority = 0,
  augmentations = { string.format('timeout=%f', settings.timeout) },
})
