import { describe, expect, it } from 'vitest';
import types from 'pg-types';
import { binaryParamToText, binaryResultSupported, textToBinary, typeSize } from '../../src/wire/formats.js';
import { TypeOid } from '../../src/wire/messages.js';

// Binary forms checked two ways: against bytes written out from PostgreSQL's *send functions,
// and against node-postgres's own binary parsers (pg-types), an implementation that is not ours.
const binary = (oid: number) => types.getTypeParser(oid, 'binary') as unknown as (b: Buffer) => unknown;
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('binary formats, result direction (PostgreSQL text output → binary)', () => {
  it.each([
    [TypeOid.bool, 't', '01'],
    [TypeOid.bool, 'f', '00'],
    [TypeOid.int2, '-2', 'fffe'],
    [TypeOid.int4, '7', '00000007'],
    [TypeOid.int8, '1099511627776', '0000010000000000'],
    [TypeOid.int8, '-9223372036854775808', '8000000000000000'],
    [TypeOid.oid, '4294967295', 'ffffffff'],
    [TypeOid.float8, '1.5', '3ff8000000000000'],
    [TypeOid.float4, '1.5', '3fc00000'],
    [TypeOid.text, 'h\u00e9', '68c3a9'],
    [TypeOid.name, 'alice', '616c696365'],
    [TypeOid.json, '{"a":1}', '7b2261223a317d'],
    [TypeOid.jsonb, '{"a":1}', '017b2261223a317d'],
    [TypeOid.bytea, '\\x00ff', '00ff'],
    [TypeOid.bytea, 'a\\\\b\\001', '615c6201'],
    // 2000-01-01 is zero; microseconds from there.
    [TypeOid.timestamptz, '2000-01-01 00:00:00+00', '0000000000000000'],
    [TypeOid.timestamptz, '2000-01-01 02:00:00+02', '0000000000000000'],
    [TypeOid.timestamptz, '2000-01-01 00:00:01.5+00', '000000000016e360'],
    [TypeOid.timestamptz, '1999-12-31 23:59:59.999999+00', 'ffffffffffffffff'],
    [TypeOid.timestamptz, '2000-01-01 05:30:00+05:30', '0000000000000000'],
    [TypeOid.timestamptz, 'infinity', '7fffffffffffffff'],
    [TypeOid.timestamptz, '-infinity', '8000000000000000'],
    [TypeOid.timestamp, '2000-01-02 00:00:00', '000000141dd76000'],
    [TypeOid.date, '2000-01-02', '00000001'],
    [TypeOid.date, '1999-12-31', 'ffffffff'],
    // ndim 1, no nulls, element text; 2 items from lower bound 1; "a", "b c".
    [TypeOid.textArray, '{a,"b c"}', '00000001 00000000 00000019 00000002 00000001 00000001 61 00000003 622063'],
    [TypeOid.textArray, '{}', '00000000 00000000 00000019'],
    [TypeOid.textArray, '{NULL,"NULL","q\\"\\\\"}', '00000001 00000001 00000019 00000003 00000001 ffffffff 00000004 4e554c4c 00000003 71225c'],
  ])('type %i: %j', (oid, text, bytes) => {
    expect(textToBinary(oid, text).toString('hex')).toBe(hex(bytes).toString('hex'));
  });

  it('agrees with node-postgres binary parsers', () => {
    expect(binary(TypeOid.int8)(textToBinary(TypeOid.int8, '1099511627776'))).toBe('1099511627776');
    expect(binary(TypeOid.float8)(textToBinary(TypeOid.float8, '-0.25'))).toBe(-0.25);
    expect(binary(TypeOid.bool)(textToBinary(TypeOid.bool, 't'))).toBe(true);
    expect(binary(TypeOid.timestamptz)(textToBinary(TypeOid.timestamptz, '2099-01-02 03:04:05.678+00'))).toEqual(new Date('2099-01-02T03:04:05.678Z'));
    expect(binary(TypeOid.timestamptz)(textToBinary(TypeOid.timestamptz, '2024-06-01 12:00:00-07'))).toEqual(new Date('2024-06-01T19:00:00Z'));
    expect(binary(TypeOid.textArray)(textToBinary(TypeOid.textArray, '{prod,"read:orders","a,b"}'))).toEqual(['prod', 'read:orders', 'a,b']);
  });

  it('knows every type the engine sends, with its fixed size', () => {
    for (const oid of [TypeOid.bool, TypeOid.int4, TypeOid.int8, TypeOid.text, TypeOid.timestamptz, TypeOid.textArray]) expect(binaryResultSupported(oid)).toBe(true);
    expect([typeSize(TypeOid.bool), typeSize(TypeOid.int2), typeSize(TypeOid.int4), typeSize(TypeOid.int8), typeSize(TypeOid.timestamptz), typeSize(TypeOid.text)]).toEqual([1, 2, 4, 8, 8, -1]);
    expect(binaryResultSupported(1700)).toBe(false); // numeric: never sent
  });
});

describe('binary formats, parameter direction (binary → the text the engine reads)', () => {
  it.each([
    [TypeOid.bool, '01', 'true'],
    [TypeOid.int2, '0007', '7'],
    [TypeOid.int4, 'ffffffff', '-1'],
    [TypeOid.int8, '0000010000000000', '1099511627776'],
    [TypeOid.oid, '80000000', '2147483648'],
    [TypeOid.float8, '3ff8000000000000', '1.5'],
    [TypeOid.float8, '4415af1d78b58c40', '1e+20'],
    [TypeOid.float8, '3eb0c6f7a0b5ed8d', '1e-06'],
    [TypeOid.float8, '7ff8000000000000', 'NaN'],
    [TypeOid.float4, '3dcccccd', '0.1'],
    [TypeOid.text, '68c3a9', 'h\u00e9'],
    [TypeOid.varchar, '61', 'a'],
    [TypeOid.unknown, '61', 'a'],
    [0, '61', 'a'],
    [TypeOid.jsonb, '017b7d', '{}'],
    [TypeOid.bytea, '00ff', '\\x00ff'],
    [TypeOid.timestamptz, '0000000000000000', '2000-01-01 00:00:00+00'],
    [TypeOid.timestamptz, '0001109d96a58fd0', '2009-07-01 06:13:20.0532+00'],
    [TypeOid.timestamptz, 'ffffffffffffffff', '1999-12-31 23:59:59.999999+00'],
    [TypeOid.timestamptz, '7fffffffffffffff', 'infinity'],
    [TypeOid.timestamp, '000000141dd76000', '2000-01-02 00:00:00'],
    [TypeOid.date, 'fffffffe', '1999-12-30'],
    [TypeOid.date, '7fffffff', 'infinity'],
    [TypeOid.textArray, '00000001 00000001 00000019 00000002 00000001 ffffffff 00000003 622063', '{NULL,"b c"}'],
    [TypeOid.int4Array, '00000001 00000000 00000017 00000001 00000001 00000004 0000002a', '{42}'],
  ])('type %i: %s', (oid, bytes, text) => {
    expect(binaryParamToText(oid, hex(bytes), 1)).toBe(text);
  });

  it('round-trips what it reads', () => {
    for (const [oid, text] of [
      [TypeOid.timestamptz, '2099-01-02 03:04:05.678+00'],
      [TypeOid.timestamptz, '0044-03-15 12:00:00+00 BC'],
      [TypeOid.float8, '3.141592653589793'],
      [TypeOid.textArray, '{a,"",NULL,"x y"}'],
      [TypeOid.int2, '-32768'],
    ] as const) {
      expect(binaryParamToText(oid, textToBinary(oid, text), 1)).toBe(text);
    }
  });

  it('refuses malformed values with 22P03 and types it does not know with 0A000', () => {
    expect(() => binaryParamToText(TypeOid.int4, hex('0001'), 2)).toThrow(expect.objectContaining({ code: '22P03', message: 'incorrect binary data format in bind parameter 2' }));
    expect(() => binaryParamToText(TypeOid.jsonb, hex('027b7d'), 1)).toThrow(expect.objectContaining({ code: '22P03' }));
    expect(() => binaryParamToText(TypeOid.textArray, hex('00000001 00000000 00000019 00000005 00000001'), 1)).toThrow(expect.objectContaining({ code: '22P03' }));
    expect(() => binaryParamToText(TypeOid.textArray, hex('00000001 00000000 00000017 00000000 00000001'), 1)).toThrow(expect.objectContaining({ code: '22P03' }));
    expect(() => binaryParamToText(1700, hex('0000'), 3)).toThrow(expect.objectContaining({ code: '0A000' }));
  });
});
