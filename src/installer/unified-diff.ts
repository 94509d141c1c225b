// `diff -u` style output for --dry-run, from a longest-common-subsequence line match.
// The installer's files are small (hundreds of lines), so the O(n·m) table is fine.

type Op = { t: ' ' | '-' | '+'; line: string };

function lines(text: string | null): string[] {
  if (text === null || text === '') return [];
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  else l[l.length - 1] += '\n\\ No newline at end of file';
  return l;
}

function ops(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) (out.push({ t: ' ', line: a[i++]! }), j++);
    // Deletions before insertions, as diff -u prints them.
    else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push({ t: '-', line: a[i++]! });
    else out.push({ t: '+', line: b[j++]! });
  }
  return out;
}

/** Unified diff with `context` lines around each change; '' when the texts are equal. */
export function unifiedDiff(path: string, before: string | null, after: string | null, context = 3): string {
  if (before === after) return '';
  const all = ops(lines(before), lines(after));
  const changed = all.flatMap((o, k) => (o.t === ' ' ? [] : [k]));
  const out = [
    `--- ${before === null ? '/dev/null' : `a/${path}`}`,
    `+++ ${after === null ? '/dev/null' : `b/${path}`}`,
  ];
  let g = 0;
  while (g < changed.length) {
    // One hunk: changes less than 2·context unchanged lines apart.
    let h = g;
    while (h + 1 < changed.length && changed[h + 1]! - changed[h]! <= 2 * context + 1) h++;
    const from = Math.max(0, changed[g]! - context);
    const to = Math.min(all.length, changed[h]! + context + 1);
    const head = all.slice(0, from);
    const hunk = all.slice(from, to);
    const aStart = head.filter((o) => o.t !== '+').length;
    const bStart = head.filter((o) => o.t !== '-').length;
    const aLen = hunk.filter((o) => o.t !== '+').length;
    const bLen = hunk.filter((o) => o.t !== '-').length;
    out.push(`@@ -${aLen ? aStart + 1 : aStart},${aLen} +${bLen ? bStart + 1 : bStart},${bLen} @@`);
    for (const o of hunk) out.push(`${o.t}${o.line}`);
    g = h + 1;
  }
  return `${out.join('\n')}\n`;
}
