/**
 * The URL of a worker thread's script beside the module at `from` (its import.meta.url).
 * Workers run compiled JavaScript: under vitest the caller is TypeScript from src/, and the
 * worker is the build's copy (npm test compiles first).
 */
export function workerScript(name: string, from: string): URL {
  const here = new URL(`./${name}.js`, from).href;
  if (!from.endsWith('.ts')) return new URL(here);
  const at = here.lastIndexOf('/src/');
  return new URL(`${here.slice(0, at)}/dist${here.slice(at)}`);
}
