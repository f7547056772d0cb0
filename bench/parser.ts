import { parse } from '../grammar/index.js';

/**
 * Parser throughput: a generated file of mixed statements, parsed whole (as `apply` and
 * psql -f deliver them), several runs, median reported.
 */
export function generateMixed(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    switch (i % 8) {
      case 0:
        out.push(`CREATE USER IF NOT EXISTS user_${i} WITH PASSWORD 'pw-${i}' ROLE readwrite CONNECTION LIMIT 5;`);
        break;
      case 1:
        out.push(`ALTER USER user_${i - 1} VALID UNTIL '2030-01-01 00:00:00+00' LOGIN;`);
        break;
      case 2:
        out.push(`SELECT $auth.id, $auth.role, current_user, current_database();`);
        break;
      case 3:
        out.push(`DROP USER IF EXISTS user_${i}, "Other User ${i}" CASCADE;`);
        break;
      case 4:
        out.push(`SET application_name = 'app_${i}';`);
        break;
      case 5:
        out.push(`-- a comment line\nSHOW USERS;`);
        break;
      case 6:
        out.push(`ALTER USER CURRENT_USER WITH PASSWORD 'rotated-${i}';`);
        break;
      default:
        out.push('BEGIN; COMMIT;');
    }
  }
  return out.join('\n');
}

export function benchParser(statements = 100_000, runs = 5): { statements: number; medianMs: number; perSecond: number; runsMs: number[] } {
  const text = generateMixed(statements);
  const count = parse(text).length; // warm-up, and the real statement count
  const runsMs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    parse(text);
    runsMs.push(performance.now() - t0);
  }
  const sorted = [...runsMs].sort((a, b) => a - b);
  const medianMs = sorted[Math.floor(sorted.length / 2)]!;
  return { statements: count, medianMs, perSecond: Math.round((count / medianMs) * 1000), runsMs };
}
