/**
 * Failpoints for the crash test (test/dataplane/mixed-crash.test.ts, bench/crash.ts):
 * PORTCULLIS_FAILPOINT=name@N kills the process (SIGKILL, no cleanup, as a power cut would)
 * the Nth time the named point is passed. Unset, a pass costs a map lookup.
 */
const wanted = parse(process.env.PORTCULLIS_FAILPOINT);
const passes = new Map<string, number>();

function parse(v: string | undefined): { name: string; at: number } | null {
  if (!v) return null;
  const at = v.lastIndexOf('@');
  const name = at < 0 ? v : v.slice(0, at);
  const n = at < 0 ? 1 : Number(v.slice(at + 1));
  return { name, at: Number.isInteger(n) && n > 0 ? n : 1 };
}

export function failpoint(name: string): void {
  if (!wanted || wanted.name !== name) return;
  const n = (passes.get(name) ?? 0) + 1;
  passes.set(name, n);
  if (n === wanted.at) process.kill(process.pid, 'SIGKILL');
}
