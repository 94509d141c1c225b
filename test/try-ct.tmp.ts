import { cpSync, rmSync } from 'node:fs';
import { rspamadmDir, rspamadm, installPlugin, writeSafetyConfig, renderBridgeConfig } from './helpers/rspamd.js';
const dir = await rspamadmDir((local) => {
  cpSync('/work/shared/fixtures/mailcow/data/conf/rspamd', local, { recursive: true });
  writeSafetyConfig(local, { normal: 1, proxy: 2, controller: 3 }, '127.0.0.1:9');
  installPlugin(local, renderBridgeConfig({ url: 'http://127.0.0.1:1/ingress/rspamd', token: 'x'.repeat(20), domain: 'agents.example.com', timeout: 10 }));
});
let t = Date.now();
let r = await rspamadm(dir, ['configtest']);
console.log(r.code, Date.now() - t, r.output.split('\n').filter((l) => /agents|error|syntax|warn/i.test(l)).join('\n'));
r = await rspamadm(dir, ['configdump', 'agents_bridge']);
console.log(r.code, r.output);
r = await rspamadm(dir, ['configdump', 'actions']);
console.log(r.code, r.output);
r = await rspamadm(dir, ['configdump', '-m']);
console.log(r.code, r.output.split('\n').filter((l) => /agents/i.test(l)).join('\n'));
rmSync(dir, { recursive: true, force: true });
