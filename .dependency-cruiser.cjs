// The import rules of docs/architecture.md, checked by test/style/dependencies.test.ts:
// core ← db ← services ← adapters, no cycles. A violation fails `npm test`.
const CORE = '^src/(core|mail)/|^src/errors\\.ts$';
const DB = '^src/db/';
const SERVICES = '^src/(admin|mailbox|ingress|policy|keys)/';
const ADAPTERS = '^src/(http|lmtp|smtp|outbound|cli|jobs|doctor|backup|mcp|webhooks|console|installer)/';
const ROOT = '^src/app/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
    {
      name: 'core-is-pure',
      comment: 'src/core and src/mail depend on nothing else of ours (they may read config types)',
      severity: 'error',
      from: { path: CORE },
      to: { path: '^src/', pathNot: `${CORE}|^src/config\\.ts$` },
    },
    {
      name: 'db-below-services',
      comment: 'src/db holds the SQL; it knows the core, never the services or adapters',
      severity: 'error',
      from: { path: DB },
      to: { path: `${SERVICES}|${ADAPTERS}|${ROOT}` },
    },
    {
      name: 'services-below-adapters',
      severity: 'error',
      from: { path: SERVICES },
      to: { path: `${ADAPTERS}|${ROOT}` },
    },
    {
      name: 'adapters-use-services',
      comment: 'adapters (HTTP, LMTP, SMTP, outbound, CLI, jobs, doctor, …) call the services, never src/db',
      severity: 'error',
      from: { path: ADAPTERS },
      to: { path: DB },
    },
    {
      name: 'adapters-apart',
      comment: 'an adapter does not reach into another adapter (the composition root in src/app wires them)',
      severity: 'error',
      from: { path: '^src/(http|lmtp|smtp|outbound|jobs|mcp|webhooks|console)/' },
      to: { path: '^src/(cli|doctor|installer)/' },
    },
    {
      name: 'nothing-imports-the-root',
      severity: 'error',
      from: { path: '^src/', pathNot: `${ROOT}|^src/(cli|doctor)/` },
      to: { path: ROOT },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
