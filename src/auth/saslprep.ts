/**
 * SASLprep (RFC 4013, a profile of stringprep RFC 3454), applied to passwords before
 * SCRAM hashing, the way PostgreSQL's pg_saslprep does it: pure ASCII is returned as is,
 * and a password that SASLprep prohibits is used unprepared rather than refused
 * (so a client and server that both follow that rule always agree).
 * Unassigned code points (table A.1) are not checked: PostgreSQL allows them in stored
 * strings too.
 */

// C.1.2 non-ASCII space characters → SPACE (RFC 4013 §2.1).
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// B.1 "commonly mapped to nothing" → removed.
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9 (RFC 4013 §2.3).
const PROHIBITED =
  /[\u0000-\u001F\u007F\u0080-\u009F\u06DD\u070F\u180E\u200C\u200D\u2028\u2029\u2060-\u2063\u206A-\u206F\uFEFF\uFFF9-\uFFFC\uE000-\uF8FF\uFDD0-\uFDEF\uFFFE\uFFFF\uD800-\uDFFF\u2FF0-\u2FFB\u0340\u0341\u200E\u200F\u202A-\u202E\u{1D173}-\u{1D17A}\u{F0000}-\u{FFFFD}\u{100000}-\u{10FFFD}\u{E0001}\u{E0020}-\u{E007F}]/u;

export function saslprep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const mapped = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (mapped.length === 0 || PROHIBITED.test(mapped) || hasNonCharacter(mapped)) return password;
  return mapped;
}

/** C.4: U+nFFFE and U+nFFFF in every plane. */
function hasNonCharacter(s: string): boolean {
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if ((cp & 0xfffe) === 0xfffe) return true;
  }
  return false;
}
