import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * SASLprep (RFC 4013, a profile of stringprep RFC 3454) of a password before SCRAM hashing,
 * exactly as PostgreSQL's pg_saslprep (src/common/saslprep.c) does it, so that a verifier
 * made here and one made by PostgreSQL for the same password are interchangeable, and libpq
 * (which runs the same pg_saslprep on the client) logs in against either:
 *
 * 1. pure ASCII is used as is (even with control characters);
 * 2. map: non-ASCII spaces (C.1.2) → SPACE, "commonly mapped to nothing" (B.1) removed;
 *    nothing left → the password is used unprepared;
 * 3. prohibited output (C.1.2, C.2.1–C.9) or a code point unassigned in Unicode 3.2 (A.1)
 *    → unprepared;
 * 4. the bidi rule of RFC 3454 §6: a string with a RandALCat character (D.1) may hold no
 *    LCat character (D.2) and must begin and end with a RandALCat one → else unprepared;
 * 5. the result is the NFKC normalization of the mapped string.
 *
 * "Unprepared" is PostgreSQL's fallback: where SASLprep fails, the raw password is hashed
 * rather than refused. PostgreSQL runs steps 3 and 4 on the mapped string *before*
 * normalizing (RFC 3454 §2 says after); we follow PostgreSQL, since agreeing with it is the
 * point. That is why the public function of @mongodb-js/saslprep, which follows the RFC
 * order and so differs on some strings (a post-3.2 compatibility character such as U+1D2C
 * ᴬ, which NFKC turns into an assigned "A"; ™ inside Hebrew, which NFKC turns into LCat
 * letters), is not called: its RFC 3454 tables are used with PostgreSQL's order.
 */

/** One stringprep table: does it hold this code point? */
interface CodePointSet {
  get(codePoint: number): boolean;
}

interface StringprepTables {
  unassigned_code_points: CodePointSet; // A.1
  commonly_mapped_to_nothing: CodePointSet; // B.1
  non_ASCII_space_characters: CodePointSet; // C.1.2
  prohibited_characters: CodePointSet; // C.1.2, C.2.1, C.2.2, C.3–C.9 (RFC 4013 §2.3)
  bidirectional_r_al: CodePointSet; // D.1
  bidirectional_l: CodePointSet; // D.2
}

let tables: StringprepTables | undefined;

/**
 * The RFC 3454 tables shipped by @mongodb-js/saslprep (pinned to an exact version in
 * package.json). The package exports only its RFC-order function, so its table module is
 * loaded from the package's own directory; a layout change in an upgrade fails here, at the
 * first non-ASCII password, and in test/auth/saslprep.test.ts, never silently.
 */
function stringprepTables(): StringprepTables {
  if (tables) return tables;
  const require = createRequire(import.meta.url);
  const dist = path.dirname(require.resolve('@mongodb-js/saslprep'));
  const { createMemoryCodePoints } = require(path.join(dist, 'memory-code-points.js')) as {
    createMemoryCodePoints?: (data: Buffer) => StringprepTables;
  };
  const data = (require(path.join(dist, 'code-points-data.js')) as { default?: Buffer }).default;
  if (typeof createMemoryCodePoints !== 'function' || !Buffer.isBuffer(data)) {
    throw new Error('@mongodb-js/saslprep: its stringprep tables are not where this version keeps them (dist/memory-code-points.js, dist/code-points-data.js)');
  }
  const t = createMemoryCodePoints(data);
  // Spot checks, one per table, against RFC 3454: a table read wrongly must not hash quietly.
  const ok =
    t.unassigned_code_points.get(0x0221) &&
    t.commonly_mapped_to_nothing.get(0x00ad) &&
    t.non_ASCII_space_characters.get(0x3000) &&
    t.prohibited_characters.get(0xfffd) &&
    t.bidirectional_r_al.get(0x05d0) &&
    t.bidirectional_l.get(0x0041) &&
    !t.bidirectional_l.get(0x05d0);
  if (!ok) throw new Error('@mongodb-js/saslprep: its stringprep tables do not read as RFC 3454');
  tables = t;
  return t;
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7F]*$/;

export function saslprep(password: string): string {
  if (ASCII.test(password)) return password;
  const t = stringprepTables();
  const mapped: number[] = [];
  for (const ch of password) {
    const cp = ch.codePointAt(0)!;
    // C.1.2 before B.1: U+200B ZERO WIDTH SPACE is in both and PostgreSQL maps it to SPACE.
    if (t.non_ASCII_space_characters.get(cp)) mapped.push(0x20);
    else if (!t.commonly_mapped_to_nothing.get(cp)) mapped.push(cp);
  }
  if (mapped.length === 0) return password;
  for (const cp of mapped) {
    if (t.prohibited_characters.get(cp) || t.unassigned_code_points.get(cp)) return password;
  }
  if (mapped.some((cp) => t.bidirectional_r_al.get(cp))) {
    if (mapped.some((cp) => t.bidirectional_l.get(cp))) return password;
    if (!t.bidirectional_r_al.get(mapped[0]!) || !t.bidirectional_r_al.get(mapped[mapped.length - 1]!)) return password;
  }
  // Built piecewise: a spread of a long password's code points could overflow the call stack.
  return mapped.map((cp) => String.fromCodePoint(cp)).join('').normalize('NFKC');
}
