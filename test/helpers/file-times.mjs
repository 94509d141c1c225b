// A second reporter for `npm test` (test/run.ts): how long each test file took, so a CI
// log says where the suite's minutes go. A file's time is the runner's own figure for it
// (the file-level test:complete event, nesting 0, named by its path): from its process's
// start to its exit, so start-up, database set-up and tests, and it stays right when
// files run concurrently. At the end: the slowest files, their sum and the wall clock of
// this runner invocation; with ADMP_TEST_TIMES=<path>, every file's seconds as JSON there too
// (added to what is there: test/run.ts runs a concurrent group, then a serial one).
// Plain JavaScript: Node 20 loads a reporter before tsx's loader is registered.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

const SHOWN = 15;

/** @param {AsyncIterable<{ type: string, data: { file?: string, name?: string, nesting?: number, details?: { duration_ms?: number } } }>} source */
export default async function* fileTimes(source) {
  /** @type {Map<string, number>} */
  const seconds = new Map();
  const started = performance.now();
  for await (const { type, data } of source) {
    if (type !== 'test:complete' || data.nesting !== 0 || !data.file || data.name !== data.file) continue;
    seconds.set(relative(process.cwd(), data.file), (data.details?.duration_ms ?? 0) / 1000);
  }
  const wall = (performance.now() - started) / 1000;
  const rows = [...seconds].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, t]) => s + t, 0);
  const out = process.env.ADMP_TEST_TIMES;
  if (out) {
    const before = existsSync(out) ? Object.entries(JSON.parse(readFileSync(out, 'utf8'))) : [];
    // Tenths of a second: test/file-times.json (the order test/run.ts starts files in) is such a file.
    const all = [...before, ...rows.map(([f, t]) => [f, Math.round(t * 10) / 10])].sort((a, b) => b[1] - a[1]);
    writeFileSync(out, JSON.stringify(Object.fromEntries(all), null, 2) + '\n');
  }
  yield `\n# test files by time (${rows.length} files, ${total.toFixed(0)} s summed, ${wall.toFixed(0)} s wall clock)\n`;
  for (const [file, t] of rows.slice(0, SHOWN)) yield `#   ${t.toFixed(1).padStart(7)} s  ${file}\n`;
}
