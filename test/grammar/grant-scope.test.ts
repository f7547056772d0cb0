import { describe, expect, it } from 'vitest';
import { parse } from '../../grammar/index.js';
import { PgError } from '../../src/errors/pg-error.js';

/** GRANT SCOPE / REVOKE SCOPE (SPEC §3), next to the GRANT forms they share a keyword with. */
const one = (sql: string) => {
  const s = parse(sql);
  expect(s).toHaveLength(1);
  return s[0]!.command;
};

describe('GRANT SCOPE / REVOKE SCOPE', () => {
  it('takes scope strings with or without parentheses, several grantees, and an expiry', () => {
    expect(one("GRANT SCOPE 'billing:read' TO alice")).toEqual({
      type: 'GrantScope',
      scopes: [{ kind: 'string', value: 'billing:read', position: 13 }],
      grantees: [{ value: 'alice', position: 31 }],
      expiry: null,
    });
    expect(one("grant scope ('a', 'b') to alice, \"Ops\" for interval '1 day'")).toMatchObject({
      type: 'GrantScope',
      scopes: [{ value: 'a' }, { value: 'b' }],
      grantees: [{ value: 'alice' }, { value: 'Ops' }],
      expiry: { kind: 'interval', value: { value: '1 day' } },
    });
    expect(one("GRANT SCOPE 'a', $1 TO bob VALID UNTIL '2030-01-01'")).toMatchObject({
      scopes: [{ kind: 'string', value: 'a' }, { kind: 'param', index: 1 }],
      expiry: { kind: 'until' },
    });
    expect(one("REVOKE SCOPE 'a', 'b' FROM alice")).toMatchObject({ type: 'RevokeScope', scopes: [{ value: 'a' }, { value: 'b' }], grantees: [{ value: 'alice' }] });
  });

  it('leaves a role named scope to the other GRANT forms', () => {
    expect(one('GRANT scope TO alice')).toMatchObject({ type: 'Grant', items: [{ word: 'scope' }], target: null });
    expect(one('GRANT scope, analyst TO alice')).toMatchObject({ type: 'Grant', items: [{ word: 'scope' }, { word: 'analyst' }] });
    expect(one('REVOKE scope FROM alice')).toMatchObject({ type: 'Revoke', items: [{ word: 'scope' }] });
  });

  it('is a positioned syntax error where the statement goes wrong', () => {
    for (const [sql, position] of [
      ["GRANT SCOPE ('a' TO alice", 18],
      ["GRANT SCOPE 'a' alice", 17],
      ["REVOKE SCOPE 'a' TO alice", 18],
    ] as const) {
      try {
        parse(sql);
        throw new Error(`expected a syntax error for ${sql}`);
      } catch (e) {
        expect(e).toBeInstanceOf(PgError);
        expect({ sql, code: (e as PgError).code, position: (e as PgError).position }).toEqual({ sql, code: '42601', position });
      }
    }
  });
});
