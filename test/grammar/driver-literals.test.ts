import { describe, expect, it } from 'vitest';
import { parse } from '../../grammar/index.js';

const one = (sql: string) => {
  const s = parse(sql);
  expect(s).toHaveLength(1);
  return s[0]!.command;
};

describe('what drivers write in value positions', () => {
  it("takes psycopg2's bound datetime, '...'::timestamptz, as a VALID UNTIL value", () => {
    expect(one("CREATE USER u WITH CONNECTION LIMIT 7 VALID UNTIL '2099-01-02T03:04:05.678000+00:00'::timestamptz")).toMatchObject({
      options: [
        { kind: 'connectionLimit', value: { kind: 'number', value: '7' } },
        { kind: 'validUntil', value: { kind: 'string', value: '2099-01-02T03:04:05.678000+00:00' } },
      ],
    });
    expect(one("ALTER USER u VALID UNTIL '2099-01-02'::date")).toMatchObject({ options: [{ kind: 'validUntil', value: { kind: 'string', value: '2099-01-02' } }] });
    expect(one('ALTER USER u VALID UNTIL $1::timestamp')).toMatchObject({ options: [{ kind: 'validUntil', value: { kind: 'param', index: 1 } }] });
  });

  it('refuses a cast to a type that is not a date or time, at the type name', () => {
    expect(() => parse("ALTER USER u VALID UNTIL '2099-01-02'::int")).toThrow(expect.objectContaining({ code: '42601', position: 40, message: 'syntax error at or near "int"' }));
  });
});
