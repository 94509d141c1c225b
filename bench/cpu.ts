// Where the two cores went during a measured window, from /proc (as research/perf.md
// measured it): each named process tree's CPU, the machine's busy time, and
// "foreign" = busy minus ours, i.e. other work on the box that skews the figures.
import { readFileSync, readdirSync } from 'node:fs';

const TICK_SEC = 0.01; // USER_HZ is 100 on Linux (getconf CLK_TCK)
const SAMPLE_MS = 250;

interface Proc {
  ppid: number;
  ticks: number;
}

function processes(): Map<number, Proc> {
  const out = new Map<number, Proc>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after "(comm)": state ppid ... utime(14) stime(15), numbered from 1 with pid.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // The process ended between readdir and read.
    }
  }
  return out;
}

function machineBusyTicks(): number {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: busy excludes idle and iowait.
  return v[0]! + v[1]! + v[2]! + v[5]! + v[6]! + v[7]!;
}

/** Which root each process belongs to: its nearest root ancestor (trees nest: PG and the server are our children). */
function rootOf(procs: Map<number, Proc>, pid: number, roots: readonly number[]): number {
  for (let q: number | undefined = pid, depth = 0; q && depth < 64; q = procs.get(q)?.ppid, depth++) {
    const i = roots.indexOf(q);
    if (i >= 0) return i;
  }
  return -1;
}

export type CpuGroups = Record<string, number | undefined>;
/** Percent of one core per group over the window, plus machine `busy` and `foreign`. */
export type CpuReport = Record<string, number>;

/** Starts a window; call the result to close it. Groups map a label to a process-tree root pid. */
export function cpuWindow(groups: CpuGroups): () => CpuReport {
  const start = Date.now();
  const roots = Object.entries(groups).filter((e): e is [string, number] => e[1] !== undefined);
  const pids = roots.map(([, pid]) => pid);
  const before = processes();
  const busyBefore = machineBusyTicks();
  // Sampled during the window too: processes that end inside it (pgbench and its
  // backends, autovacuum workers) keep the ticks last seen instead of vanishing.
  const seen = new Map(before);
  const sample = () => {
    for (const [pid, p] of processes()) seen.set(pid, p);
  };
  const timer = setInterval(sample, SAMPLE_MS);
  return () => {
    clearInterval(timer);
    sample();
    const busy = machineBusyTicks() - busyBefore;
    const sec = (Date.now() - start) / 1000;
    const pct = (ticks: number) => Math.round((ticks * TICK_SEC * 100) / sec);
    const sums = pids.map(() => 0);
    for (const [pid, p] of seen) {
      const i = rootOf(seen, pid, pids);
      if (i >= 0) sums[i]! += p.ticks - (before.get(pid)?.ticks ?? 0);
    }
    const out: CpuReport = {};
    roots.forEach(([label], i) => (out[label] = pct(sums[i]!)));
    const ours = sums.reduce((a, b) => a + b, 0);
    out.busy = pct(busy);
    out.foreign = Math.max(0, pct(busy - ours));
    return out;
  };
}

export const formatCpu = (r: CpuReport): string =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${v}%`)
    .join(', ');

/** CPU time of our process trees (not `busy` or `foreign`) per item at `perSec`, in µs. */
export function cpuMicrosPer(cpu: CpuReport, perSec: number): number {
  const ours = Object.entries(cpu)
    .filter(([k]) => k !== 'busy' && k !== 'foreign')
    .reduce((a, [, v]) => a + v, 0);
  return ((ours / 100) * 1e6) / perSec;
}

/** Runs `fn` inside a CPU window of `groups`. */
export async function withCpu<T>(groups: CpuGroups, fn: () => Promise<T>): Promise<{ result: T; cpu: CpuReport }> {
  const close = cpuWindow(groups);
  const result = await fn();
  return { result, cpu: close() };
}
