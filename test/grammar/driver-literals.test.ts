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

describe('session housekeeping statements', () => {
  it('parses each form', () => {
    expect(parse('DISCARD ALL; discard temporary; DEALLOCATE PREPARE "S_1"; DEALLOCATE ALL; CLOSE ALL; CLOSE c1; UNLISTEN *; LISTEN jobs').map((s) => s.command)).toEqual([
      { type: 'Discard', what: 'ALL', position: 1 },
      { type: 'Discard', what: 'TEMP', position: 14 },
      { type: 'Deallocate', name: { value: 'S_1', position: 52 } },
      { type: 'Deallocate', name: null },
      { type: 'Close', name: null },
      { type: 'Close', name: { value: 'c1', position: 92 } },
      { type: 'Unlisten', channel: null },
      { type: 'Listen', channel: { value: 'jobs', position: 115 }, position: 108 },
    ]);
  });

  it('keeps the new keywords usable as names', () => {
    expect(one('CREATE USER discard')).toMatchObject({ type: 'CreateUser', name: { value: 'discard' } });
    expect(one('DROP USER close, listen, temp')).toMatchObject({ type: 'DropUser', names: [{ value: 'close' }, { value: 'listen' }, { value: 'temp' }] });
  });

  it('refuses DISCARD of something else at that word', () => {
    expect(() => parse('DISCARD EVERYTHING')).toThrow(expect.objectContaining({ code: '42601', position: 9 }));
  });
});
