// temporary: profile one ingest case
import { ingestBench } from './ingest.js';
import { startPostgres } from './postgres.js';
import { cpuWindow } from './cpu.js';
const pg = await startPostgres(console.log);
const cleanups: (() => Promise<void>)[] = [];
const postgres = await pg.postmasterPid();
try {
  const r = await ingestBench({ pg, log: console.log, cleanups, measured: async (server, fn) => { const close = cpuWindow({ postgres, server, bench: process.pid }); const result = await fn(); return { result, cpu: close() }; } },
    { seconds: Number(process.env.S ?? 8), warmupSeconds: 2, connections: 32, poolMax: 16, workers: [Number(process.env.W ?? 1)], only: process.env.ONLY });
  for (const m of r.measurements) console.log(m.label, Math.round(m.perSec), JSON.stringify(m.cpu), Math.round(Object.entries(m.cpu).filter(([k]) => k !== 'busy' && k !== 'foreign').reduce((a, [, v]) => a + v, 0) * 1e4 / m.perSec), m.notes.join('; '));
} finally {
  for (const f of cleanups.reverse()) await f().catch(() => undefined);
  await pg.stop();
}
