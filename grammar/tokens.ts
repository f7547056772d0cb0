import { createToken, Lexer } from './chevrotain.js';
import type { CustomPatternMatcherFunc, ILexingResult, Lexer as LexerType, TokenType } from 'chevrotain';

/**
 * Tokens of the admin language. Keywords are case-insensitive. Keywords in the NonReserved
 * category can still be used as names (`CREATE USER login`), as in PostgreSQL.
 *
 * Words are lexed as identifiers and looked up in one keyword map (scanner.ts), so no
 * keyword can shadow a longer one (COMMIT / COMMITTED), whatever the declaration order.
 * The patterns below describe each token for Chevrotain's reference lexer.
 */

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_\u0080-\uFFFF][A-Za-z0-9_$\u0080-\uFFFF]*/, label: 'a name' });

/** Keywords that may also serve as names. */
export const NonReserved = createToken({ name: 'NonReserved', pattern: Lexer.NA });
/** Keywords that never serve as bare names (quote them to use them as names). */
export const Reserved = createToken({ name: 'Reserved', pattern: Lexer.NA });

const keywordTokens: TokenType[] = [];
const KEYWORDS = new Map<string, TokenType>();
const KEYWORDS_AS_WRITTEN = new Map<string, TokenType>();
function kw(word: string, reserved = false): TokenType {
  const t = createToken({ name: word, pattern: Lexer.NA, categories: [reserved ? Reserved : NonReserved], label: word });
  keywordTokens.push(t);
  KEYWORDS.set(word.toLowerCase(), t);
  KEYWORDS_AS_WRITTEN.set(word, t);
  KEYWORDS_AS_WRITTEN.set(word.toLowerCase(), t);
  return t;
}

// Reserved, as in PostgreSQL (they start statements or are expression keywords).
export const Select = kw('SELECT', true);
export const Create = kw('CREATE', true);
export const Alter = kw('ALTER', true);
export const Drop = kw('DROP', true);
export const Not = kw('NOT', true);
export const Null = kw('NULL', true);
export const True = kw('TRUE', true);
export const False = kw('FALSE', true);
export const CurrentUser = kw('CURRENT_USER', true);
export const SessionUser = kw('SESSION_USER', true);
export const As = kw('AS', true);
export const To = kw('TO', true);
export const All = kw('ALL', true);
export const Default = kw('DEFAULT', true);
export const From = kw('FROM', true);
export const With = kw('WITH', true);
export const Only = kw('ONLY', true);
export const Grant = kw('GRANT', true);
export const Revoke = kw('REVOKE', true);
export const On = kw('ON', true);
export const For = kw('FOR', true);
export const In = kw('IN', true);

// Non-reserved.
export const Users = kw('USERS');
export const User = kw('USER');
export const If = kw('IF');
export const Exists = kw('EXISTS');
export const Password = kw('PASSWORD');
export const Role = kw('ROLE');
export const Privileges = kw('PRIVILEGES');
export const Collection = kw('COLLECTION');
export const Interval = kw('INTERVAL');
export const Grants = kw('GRANTS');
export const Api = kw('API');
export const Key = kw('KEY');
export const Keys = kw('KEYS');
export const Databases = kw('DATABASES');
export const Scopes = kw('SCOPES');
export const Scope = kw('SCOPE');
export const Expires = kw('EXPIRES');
export const At = kw('AT');
export const Rotate = kw('ROTATE');
export const Grace = kw('GRACE');
export const Service = kw('SERVICE');
export const Account = kw('ACCOUNT');
export const Accounts = kw('ACCOUNTS');
export const Oidc = kw('OIDC');
export const Provider = kw('PROVIDER');
export const Providers = kw('PROVIDERS');
export const Issuer = kw('ISSUER');
export const Token = kw('TOKEN');
export const Tokens = kw('TOKENS');
export const JwksUri = kw('JWKS_URI');
export const Audience = kw('AUDIENCE');
export const Rls = kw('RLS');
export const Policy = kw('POLICY');
export const Policies = kw('POLICIES');
export const Permissive = kw('PERMISSIVE');
export const Restrictive = kw('RESTRICTIVE');
export const Contains = kw('CONTAINS');
export const Explain = kw('EXPLAIN');
export const Jwt = kw('JWT');
export const Audit = kw('AUDIT');
export const Log = kw('LOG');
export const Claims = kw('CLAIMS');
export const Tenant = kw('TENANT');
export const Database = kw('DATABASE');
export const Id = kw('ID');
export const Valid = kw('VALID');
export const Until = kw('UNTIL');
export const Connection = kw('CONNECTION');
export const Limit = kw('LIMIT');
export const Login = kw('LOGIN');
export const NoLogin = kw('NOLOGIN');
export const Certificate = kw('CERTIFICATE');
export const Subject = kw('SUBJECT');
export const Rename = kw('RENAME');
export const Unlock = kw('UNLOCK');
export const Import = kw('IMPORT');
export const Dump = kw('DUMP');
export const Catalog = kw('CATALOG');
export const Cascade = kw('CASCADE');
export const Restrict = kw('RESTRICT');
export const Show = kw('SHOW');
export const Begin = kw('BEGIN');
export const Start = kw('START');
export const Transaction = kw('TRANSACTION');
export const Work = kw('WORK');
export const Commit = kw('COMMIT');
export const End = kw('END');
export const Rollback = kw('ROLLBACK');
export const Abort = kw('ABORT');
export const Set = kw('SET');
export const Reset = kw('RESET');
// Session housekeeping that drivers and poolers send (non-reserved, as in PostgreSQL).
export const Discard = kw('DISCARD');
export const Plans = kw('PLANS');
export const Sequences = kw('SEQUENCES');
export const Temp = kw('TEMP');
export const Temporary = kw('TEMPORARY');
export const Deallocate = kw('DEALLOCATE');
export const Prepare = kw('PREPARE');
export const Close = kw('CLOSE');
export const Listen = kw('LISTEN');
export const Unlisten = kw('UNLISTEN');
export const Session = kw('SESSION');
export const Local = kw('LOCAL');
export const Time = kw('TIME');
export const Zone = kw('ZONE');
export const Isolation = kw('ISOLATION');
export const Level = kw('LEVEL');
export const Read = kw('READ');
export const Write = kw('WRITE');
export const Committed = kw('COMMITTED');
export const Uncommitted = kw('UNCOMMITTED');
export const Repeatable = kw('REPEATABLE');
export const Serializable = kw('SERIALIZABLE');
export const Deferrable = kw('DEFERRABLE');
export const Characteristics = kw('CHARACTERISTICS');
export const Names = kw('NAMES');
export const Authorization = kw('AUTHORIZATION');
export const Auth = kw('AUTH');
export const And = kw('AND', true);
export const Or = kw('OR', true);
export const Is = kw('IS', true);
export const Using = kw('USING', true);
export const Chain = kw('CHAIN');
export const No = kw('NO');

export const QuotedIdentifier = createToken({ name: 'QuotedIdentifier', pattern: /"(?:[^"]|"")*"/, label: 'a quoted name' });
/** standard_conforming_strings is on: a backslash in '...' is an ordinary character. */
export const StringLiteral = createToken({ name: 'StringLiteral', pattern: /'(?:[^']|'')*'/, label: 'a string' });
/** E'...': backslash escapes (\n, \t, \\, \', ...). */
export const EscapeString = createToken({ name: 'EscapeString', pattern: /[Ee]'(?:[^'\\]|''|\\.)*'/, label: 'a string' });

/** $tag$ ... $tag$ (dollar quoting), matched by hand because the closing tag repeats the opening one. */
const dollarQuote: CustomPatternMatcherFunc = (text, offset) => {
  const open = /\$([A-Za-z_\u0080-\uFFFF][A-Za-z0-9_\u0080-\uFFFF]*)?\$/y;
  open.lastIndex = offset;
  const m = open.exec(text);
  if (!m) return null;
  const close = text.indexOf(m[0], offset + m[0].length);
  if (close < 0) return null;
  const whole = text.slice(offset, close + m[0].length);
  return [whole] as unknown as RegExpExecArray;
};
export const DollarString = createToken({ name: 'DollarString', pattern: dollarQuote, line_breaks: true, start_chars_hint: ['$'], label: 'a string' });

export const Param = createToken({ name: 'Param', pattern: /\$[0-9]+/, label: 'a parameter' });
export const AuthRef = createToken({
  name: 'AuthRef',
  pattern: /\$auth(?:\.[A-Za-z_][A-Za-z0-9_]*)+/i,
  label: 'an $auth variable',
});
export const Number_ = createToken({ name: 'Number', pattern: /(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/, label: 'a number' });

export const Semicolon = createToken({ name: 'Semicolon', pattern: /;/, label: ';' });
export const Comma = createToken({ name: 'Comma', pattern: /,/, label: ',' });
export const LParen = createToken({ name: 'LParen', pattern: /\(/, label: '(' });
export const RParen = createToken({ name: 'RParen', pattern: /\)/, label: ')' });
export const DoubleColon = createToken({ name: 'DoubleColon', pattern: /::/, label: '::' });
export const Equals = createToken({ name: 'Equals', pattern: /=/, label: '=' });
export const NotEquals = createToken({ name: 'NotEquals', pattern: /<>|!=/, label: '<>' });
export const LessEq = createToken({ name: 'LessEq', pattern: /<=/, label: '<=' });
export const GreaterEq = createToken({ name: 'GreaterEq', pattern: />=/, label: '>=' });
export const Less = createToken({ name: 'Less', pattern: /</, label: '<' });
export const Greater = createToken({ name: 'Greater', pattern: />/, label: '>' });
export const Dot = createToken({ name: 'Dot', pattern: /\./, label: '.' });
export const Minus = createToken({ name: 'Minus', pattern: /-/, label: '-' });
export const Plus = createToken({ name: 'Plus', pattern: /\+/, label: '+' });
export const Star = createToken({ name: 'Star', pattern: /\*/, label: '*' });

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /\s+/, group: Lexer.SKIPPED });
export const LineComment = createToken({ name: 'LineComment', pattern: /--[^\n\r]*/, group: Lexer.SKIPPED });
/** Block comments nest in PostgreSQL, so they are matched by hand. */
const blockComment: CustomPatternMatcherFunc = (text, offset) => {
  if (!text.startsWith('/*', offset)) return null;
  let depth = 0;
  let i = offset;
  while (i < text.length) {
    if (text.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (text.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return [text.slice(offset, i)] as unknown as RegExpExecArray;
    } else i++;
  }
  return null;
};
export const BlockComment = createToken({ name: 'BlockComment', pattern: blockComment, line_breaks: true, start_chars_hint: ['/'], group: Lexer.SKIPPED });

export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  AuthRef,
  DollarString,
  Param,
  EscapeString, // before Identifier: E'...' must not lex as the name E
  StringLiteral,
  NonReserved,
  Reserved,
  Identifier,
  QuotedIdentifier,
  Number_,
  Semicolon,
  Comma,
  LParen,
  RParen,
  DoubleColon,
  Equals,
  NotEquals,
  LessEq,
  GreaterEq,
  Less,
  Greater,
  Dot,
  Minus,
  Plus,
  Star,
];

/** The parser's vocabulary: what the lexer produces plus the keywords `tokenize` assigns. */
export const vocabulary: TokenType[] = [...allTokens, ...keywordTokens];

/** The keyword a word spells (case-insensitively), if any. */
export function keywordOf(word: string): TokenType | undefined {
  // Exact upper- and lower-case spellings first: no new string for the common cases.
  return KEYWORDS_AS_WRITTEN.get(word) ?? KEYWORDS.get(word.toLowerCase());
}

/**
 * Chevrotain's regex lexer over the same tokens: kept as the reference the scanner is
 * tested against (test/grammar/scanner.test.ts), not used to parse.
 */
export function referenceLexer(): LexerType {
  return new Lexer(allTokens, { positionTracking: 'onlyOffset', ensureOptimizations: true });
}

/** Lexes with the reference lexer, keywords retyped as the scanner does. */
export function referenceTokenize(text: string): ILexingResult {
  const res = (referenceLexerInstance ??= referenceLexer()).tokenize(text);
  for (const t of res.tokens) {
    if (t.tokenType !== Identifier) continue;
    const k = KEYWORDS.get(t.image.toLowerCase());
    if (k) {
      t.tokenType = k;
      t.tokenTypeIdx = k.tokenTypeIdx!;
    }
  }
  return res;
}
let referenceLexerInstance: LexerType | undefined;
