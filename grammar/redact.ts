import { scan } from './scanner.js';
import { Password } from './tokens.js';

const STRINGS = new Set(['StringLiteral', 'EscapeString', 'DollarString']);
/** Shapes of secrets wherever they stand: an API key, a JWT. */
const SECRET_SHAPES = [/pcu_[a-z0-9]{16}_/i, /^'?[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*'?$/];

/**
 * A statement's text fit for the audit trail and logs (a secret is never echoed):
 * its tokens, one space apart — comments dropped, for a comment may hold anything — with
 * the string after PASSWORD, and any string shaped like a key or a token, replaced by
 * '[redacted]'. Parameters ($1) are never part of the text.
 */
export function redactText(text: string): string {
  const { tokens } = scan(text);
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const isString = STRINGS.has(t.tokenType.name);
    const afterPassword = i > 0 && tokens[i - 1]!.tokenType === Password;
    out.push(isString && (afterPassword || SECRET_SHAPES.some((re) => re.test(t.image))) ? "'[redacted]'" : t.image);
  }
  return out.join(' ').replace(/ ;$/, ';');
}
