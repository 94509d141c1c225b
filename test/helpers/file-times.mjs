// A second reporter for `npm test` (test/run.ts): how long each test file took, so a CI
// log says where the suite's minutes go. Files run one at a time (--test-concurrency=1),
// so a file's time is from the previous file's last result to its own last result: its
// start-up, database set-up and tests. At the end: the slowest files and the total; with
// ADMP_TEST_TIMES=<path>, every file's seconds as JSON there too.
// Plain JavaScript: Node 20 loads a reporter before tsx's loader is registered.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';

const SHOWN = 15;

/** @param {AsyncIterable<{ type: string, data: { file?: string } }>} source */
export default async function* fileTimes(source) {
  /** @type {Map<string, number>} */
  const seconds = new Map();
  let mark = performance.now();
  for await (const { type, data } of source) {
    if ((type !== 'test:pass' && type !== 'test:fail') || !data.file) continue;
    const file = relative(process.cwd(), data.file);
    const now = performance.now();
    seconds.set(file, (seconds.get(file) ?? 0) + (now - mark) / 1000);
    mark = now;
  }
  const rows = [...seconds].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, t]) => s + t, 0);
  const out = process.env.ADMP_TEST_TIMES;
  if (out) writeFileSync(out, JSON.stringify(Object.fromEntries(rows), null, 2) + '\n');
  yield `\n# test files by time (${rows.length} files, ${total.toFixed(0)} s)\n`;
  for (const [file, t] of rows.slice(0, SHOWN)) yield `#   ${t.toFixed(1).padStart(7)} s  ${file}\n`;
}
