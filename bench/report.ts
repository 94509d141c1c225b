// The side-by-side table, the targets from the issue, and the JSON record of a run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuMicrosPer, formatCpu, type CpuReport } from './cpu.js';

export interface Measurement {
  readonly label: string;
  readonly unit: string;
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** What latency is of: a request, a transaction, a cycle. */
  readonly per: string;
  readonly errors: number;
  readonly cpu: CpuReport;
  readonly notes: string[];
  readonly raw: unknown;
}

/**
 * `baseline`: another measurement of the same run, or a fixed rate (in `ours`' unit) the
 * issue asks for. Without `min`, a comparison the issue asks to print, with no target.
 */
export interface Target {
  readonly path: string;
  readonly ours?: Measurement;
  readonly baseline?: Measurement | number;
  readonly min?: number;
}

const count = (n: number, unit: string) => `${Math.round(n).toLocaleString('en-US')} ${unit}`;
const rate = (m?: Measurement) => (m ? count(m.perSec, m.unit) : 'n/a');
const baselineRate = (t: Target): number | undefined =>
  typeof t.baseline === 'number' ? t.baseline : t.baseline?.perSec;
export const ratioOf = (t: Target): number | undefined => {
  const b = baselineRate(t);
  return t.ours && b ? t.ours.perSec / b : undefined;
};
export const metOf = (t: Target): boolean | undefined => {
  const r = ratioOf(t);
  return r === undefined || t.min === undefined ? undefined : r >= t.min;
};

function markdownTable(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export function targetTable(targets: readonly Target[]): string {
  return markdownTable(
    ['path', 'ours', 'baseline', 'ratio', 'target', 'met'],
    targets.map((t) => {
      const r = ratioOf(t);
      const met = metOf(t);
      const base =
        typeof t.baseline === 'number'
          ? `${count(t.baseline, t.ours?.unit ?? 'per s')} (target)`
          : `${rate(t.baseline)}${t.baseline ? ` (${t.baseline.label})` : ''}`;
      return [
        t.path,
        rate(t.ours),
        base,
        r === undefined ? 'n/a' : r.toFixed(2),
        t.min === undefined ? '—' : `≥ ${t.min}`,
        t.min === undefined ? '—' : met === undefined ? 'n/a' : met ? 'yes' : 'NO',
      ];
    }),
  );
}

/**
 * Machine CPU (every process of the measured system, load generator included) per
 * operation, in µs. Unlike the rate it hardly moves when other work shares the box.
 */
export const cpuPerOp = (m: Measurement): number => cpuMicrosPer(m.cpu, m.perSec);

/** What the ratio would be if both sides were CPU-bound with the machine to themselves. */
export const cpuRatioOf = (t: Target): number | undefined =>
  t.ours && t.baseline && typeof t.baseline !== 'number' ? cpuPerOp(t.baseline) / cpuPerOp(t.ours) : undefined;

export function cpuTable(targets: readonly Target[]): string {
  return markdownTable(
    ['path', 'ours CPU µs/op', 'baseline CPU µs/op', 'CPU-normalized ratio'],
    targets.flatMap((t) =>
      t.ours && t.baseline && typeof t.baseline !== 'number'
        ? [[t.path, cpuPerOp(t.ours).toFixed(0), cpuPerOp(t.baseline).toFixed(0), cpuRatioOf(t)!.toFixed(2)]]
        : [],
    ),
  );
}

export function detailTable(ms: readonly Measurement[]): string {
  return markdownTable(
    ['measurement', 'rate', 'p50 / p99 ms', 'errors', 'CPU (% of one core)', 'CPU µs/op'],
    ms.map((m) => [
      m.label,
      rate(m),
      `${m.p50Ms.toFixed(1)} / ${m.p99Ms.toFixed(1)} per ${m.per}`,
      String(m.errors),
      formatCpu(m.cpu),
      cpuPerOp(m).toFixed(0),
    ]),
  );
}

/** Writes bench/results/<timestamp>.json (kept out of git) and returns its path. */
export function writeResults(record: object): string {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const path = `${dir}${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(path, `${JSON.stringify(record, null, 2)}\n`);
  return path;
}

/**
 * One result line: both rates, their ratio against the target, and both sides' CPU time per
 * message (postgres, server and bench process together) with the ratio it implies: what the
 * rates would be if each had the machine to itself (steadier than the rates on a shared box).
 */
export function besideLine(
  ours: string,
  perSec: number,
  cpu: CpuReport,
  baseline: string,
  basePerSec: number,
  baseCpu: CpuReport,
  target: number,
): string {
  const [us, baseUs] = [cpuMicrosPer(cpu, perSec), cpuMicrosPer(baseCpu, basePerSec)];
  return (
    `${ours} ${perSec.toFixed(0)} msgs/s vs ${baseline} ${basePerSec.toFixed(0)} msgs/s: ratio ${(perSec / basePerSec).toFixed(2)} (target ≥ ${target.toFixed(2)}); ` +
    `CPU ${us.toFixed(0)} vs ${baseUs.toFixed(0)} µs/msg, CPU-normalized ratio ${(baseUs / us).toFixed(2)}`
  );
}
