import { PgError } from '../errors/pg-error.js';

/**
 * Text forms of values, as PostgreSQL writes and reads them.
 * Timestamps: input in ISO 8601 / PostgreSQL style, output as `YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM]`
 * in the session's TimeZone.
 */

const TS_RE =
  /^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?\s*$/i;

/** Parses a timestamptz literal; `infinity` becomes null (no expiry). */
export function parseTimestamp(text: string, timeZone: string): number | null {
  const t = text.trim().toLowerCase();
  if (t === 'infinity') return null;
  const m = TS_RE.exec(text);
  const bad = () => new PgError('invalid_datetime_format', `invalid input syntax for type timestamp with time zone: "${text}"`);
  if (!m) throw bad();
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const ms = Math.round(Number(`0.${frac || '0'}`) * 1000);
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(utc);
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 24 || minute > 59 || second > 60) {
    throw new PgError('datetime_field_overflow', `date/time field value out of range: "${text}"`);
  }
  let offsetMin: number;
  if (zone === undefined) offsetMin = zoneOffsetMinutes(timeZone, utc);
  else if (/^(z|utc|gmt)$/i.test(zone)) offsetMin = 0;
  else {
    const zm = /^([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(zone)!;
    offsetMin = (zm[1] === '-' ? -1 : 1) * (Number(zm[2]) * 60 + Number(zm[3] ?? 0));
  }
  return utc - offsetMin * 60_000;
}

/** Formats milliseconds since the epoch as PostgreSQL's timestamptz output (ISO DateStyle). */
export function formatTimestamp(ms: number, timeZone: string): string {
  const off = zoneOffsetMinutes(timeZone, ms);
  const d = new Date(ms + off * 60_000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  let s = `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
  if (d.getUTCMilliseconds() !== 0) s += `.${p(d.getUTCMilliseconds(), 3)}`.replace(/0+$/, '');
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  s += `${sign}${p(Math.floor(a / 60))}`;
  if (a % 60 !== 0) s += `:${p(a % 60)}`;
  return s;
}

const offsetCache = new Map<string, Intl.DateTimeFormat>();

/** The zone's UTC offset in minutes at instant `ms` (IANA names via Intl; UTC fast path). */
export function zoneOffsetMinutes(timeZone: string, ms: number): number {
  if (/^(utc|gmt|etc\/utc|z|zulu|universal)$/i.test(timeZone)) return 0;
  let f = offsetCache.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
    offsetCache.set(timeZone, f);
  }
  const part = f.formatToParts(new Date(ms)).find((x) => x.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):(\d{2})/.exec(part);
  if (!m) return 0;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function parseInteger(text: string, what: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(text)) {
    throw new PgError('invalid_text_representation', `invalid input syntax for type integer: "${text}"`, { detail: `for ${what}` });
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > 2147483647 || n < -2147483648) {
    throw new PgError('numeric_value_out_of_range', `value "${text}" is out of range for type integer`);
  }
  return n;
}

/** text[] output: {a,b,"c d"} with PostgreSQL's quoting rules. */
export function formatTextArray(items: readonly string[]): string {
  return `{${items
    .map((s) => (s === '' || /[{},"\\\s]/.test(s) || s.toLowerCase() === 'null' ? `"${s.replace(/["\\]/g, '\\$&')}"` : s))
    .join(',')}}`;
}
