import { startDns } from './helpers/dns.js';
import { startRspamd } from './helpers/rspamd.js';
import { execFileSync } from 'node:child_process';
const dns = await startDns();
const lua = `
rspamd_config:register_symbol({ name = 'DBG_FROM', type = 'normal', score = 0.0, callback = function(task)
  local f = task:get_from('smtp')[1]
  local r = task:get_recipients('smtp')[1]
  return true, 'from', f.raw or '-', f.addr or '-', f.user or '-', 'rcpt', r.raw or '-', r.addr or '-', r.user or '-'
end })`;
const r = await startRspamd({ dns: dns.server, pluginConfig: null, extraLocal: { 'rspamd.local.lua': lua } });
console.log(execFileSync('rspamc', ['-h', `127.0.0.1:${r.ports.normal}`, '--from', 'Alice+1@Sender.example', '--rcpt', 'Agent+Thread.x@Agents.example.com', '/tmp/admp-addr.eml']).toString().split('\n').filter((l) => /DBG/.test(l)).join('\n'));
await r.stop(); await dns.stop();
