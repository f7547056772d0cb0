/**
 * A unified diff of two texts by lines (LCS by dynamic programming: golden files are
 * small), with three lines of context, as `diff -u` prints it.
 */
export function unifiedDiff(expected: string, actual: string, expectedName: string, actualName: string, colour = false): string {
  const a = splitLines(expected);
  const b = splitLines(actual);
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..]
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  type Op = { kind: ' ' | '-' | '+'; text: string; ai: number; bi: number };
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: ' ', text: a[i]!, ai: i++, bi: j++ });
    // Removals before additions, as diff -u prints a changed line.
    else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ kind: '-', text: a[i]!, ai: i++, bi: j });
    else ops.push({ kind: '+', text: b[j]!, ai: i, bi: j++ });
  }
  const paint = (s: string, code: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  let out = paint(`--- ${expectedName}`, '1') + '\n' + paint(`+++ ${actualName}`, '1') + '\n';
  const CONTEXT = 3;
  let k = 0;
  while (k < ops.length) {
    if (ops[k]!.kind === ' ') {
      k++;
      continue;
    }
    // A hunk: from CONTEXT lines before this change to CONTEXT lines after the last change
    // that is no more than 2×CONTEXT unchanged lines from the previous one.
    const from = Math.max(0, k - CONTEXT);
    let to = k;
    let unchanged = 0;
    for (let x = k; x < ops.length; x++) {
      if (ops[x]!.kind === ' ') {
        if (++unchanged > 2 * CONTEXT) break;
      } else {
        unchanged = 0;
        to = x;
      }
    }
    const end = Math.min(ops.length, to + CONTEXT + 1);
    const hunk = ops.slice(from, end);
    const aCount = hunk.filter((o) => o.kind !== '+').length;
    const bCount = hunk.filter((o) => o.kind !== '-').length;
    const aStart = aCount === 0 ? hunk[0]!.ai : hunk[0]!.ai + 1;
    const bStart = bCount === 0 ? hunk[0]!.bi : hunk[0]!.bi + 1;
    out += paint(`@@ -${aStart},${aCount} +${bStart},${bCount} @@`, '36') + '\n';
    for (const o of hunk) out += (o.kind === '-' ? paint(`-${o.text}`, '31') : o.kind === '+' ? paint(`+${o.text}`, '32') : ` ${o.text}`) + '\n';
    k = end;
  }
  return out;
}

function splitLines(s: string): string[] {
  const lines = s.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
