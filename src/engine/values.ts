import type { Value } from '../../grammar/index.js';
import { PgError } from '../errors/pg-error.js';
import { assertNever } from '../wire/messages.js';

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

const formatted = new Map<string, Map<number, string>>();

/** Formats milliseconds since the epoch as PostgreSQL's timestamptz output (ISO DateStyle). */
export function formatTimestamp(ms: number, timeZone: string): string {
  // The same instants come back on every SHOW (creation times): remember their text.
  let byZone = formatted.get(timeZone);
  if (!byZone) formatted.set(timeZone, (byZone = new Map()));
  let s = byZone.get(ms);
  if (s === undefined) {
    if (byZone.size >= 100_000) byZone.clear();
    s = formatUncached(ms, timeZone);
    byZone.set(ms, s);
  }
  return s;
}

function formatUncached(ms: number, timeZone: string): string {
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

/** An int8 (bigint) in text: PostgreSQL's range, kept exact as text. */
export function parseBigint(text: string, what: string): string {
  if (!/^\s*[+-]?\d+\s*$/.test(text)) {
    throw new PgError('invalid_text_representation', `invalid input syntax for type bigint: "${text}"`, { detail: `for ${what}` });
  }
  const n = BigInt(text.trim());
  if (n > 9223372036854775807n || n < -9223372036854775808n) {
    throw new PgError('numeric_value_out_of_range', `value "${text}" is out of range for type bigint`);
  }
  return n.toString();
}

/** text[] output: {a,b,"c d"} with PostgreSQL's quoting rules. */
export function formatTextArray(items: readonly string[]): string {
  return `{${items
    .map((s) => (s === '' || /[{},"\\\s]/.test(s) || s.toLowerCase() === 'null' ? `"${s.replace(/["\\]/g, '\\$&')}"` : s))
    .join(',')}}`;
}

const UNIT_MS: Record<string, number> = {
  microsecond: 0.001, microseconds: 0.001, us: 0.001,
  millisecond: 1, milliseconds: 1, ms: 1,
  second: 1000, seconds: 1000, sec: 1000, secs: 1000, s: 1000,
  minute: 60_000, minutes: 60_000, min: 60_000, mins: 60_000, m: 60_000,
  hour: 3_600_000, hours: 3_600_000, hr: 3_600_000, hrs: 3_600_000, h: 3_600_000,
  day: 86_400_000, days: 86_400_000, d: 86_400_000,
  week: 604_800_000, weeks: 604_800_000, w: 604_800_000,
  // PostgreSQL adds months and years to a date by the calendar; as a duration from now,
  // a month is 30 days and a year 365.25 days, as its interval-to-epoch conversion does.
  month: 2_592_000_000, months: 2_592_000_000, mon: 2_592_000_000, mons: 2_592_000_000,
  year: 31_557_600_000, years: 31_557_600_000, y: 31_557_600_000,
};

/** An interval literal ('2 hours', '1 day 12:00:00', '90 minutes', '00:30') in milliseconds. */
export function parseInterval(text: string): number {
  const bad = () => new PgError('invalid_datetime_format', `invalid input syntax for type interval: "${text}"`);
  let rest = text.trim().toLowerCase().replace(/^@\s*/, '');
  if (rest === '') throw bad();
  let ms = 0;
  const part = /^([+-]?\d+(?:\.\d+)?)\s*([a-z]+)\s*/;
  const clock = /^([+-])?(\d+):(\d{2})(?::(\d{2}(?:\.\d+)?))?\s*/;
  while (rest.length > 0) {
    let m = clock.exec(rest);
    if (m) {
      const sign = m[1] === '-' ? -1 : 1;
      ms += sign * (Number(m[2]) * 3_600_000 + Number(m[3]) * 60_000 + Number(m[4] ?? 0) * 1000);
      rest = rest.slice(m[0].length);
      continue;
    }
    m = part.exec(rest);
    if (!m) throw bad();
    const unit = UNIT_MS[m[2]!];
    if (unit === undefined) throw bad();
    ms += Number(m[1]) * unit;
    rest = rest.slice(m[0].length);
  }
  if (!Number.isFinite(ms) || Math.abs(ms) > 1e15) throw new PgError('datetime_field_overflow', `interval out of range: "${text}"`);
  return ms;
}

/** The text of a value position, with `$n` bound from the Bind message. */
export function valueText(v: Value, params: (string | null)[]): string | null {
  switch (v.kind) {
    case 'string':
    case 'number':
      return v.value;
    case 'boolean':
      return v.value ? 'true' : 'false';
    case 'null':
      return null;
    case 'param': {
      if (v.index < 1 || v.index > params.length) {
        throw new PgError('undefined_parameter', `there is no parameter $${v.index}`, { position: v.position });
      }
      return params[v.index - 1]!;
    }
    default:
      return assertNever(v);
  }
}
