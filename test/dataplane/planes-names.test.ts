import { describe, expect, it } from 'vitest';
import { parsePlaneDatabaseName, parsePlaneDbKey, planeDatabaseName, planeDbKey } from '../../src/dataplane/names.js';

describe('data plane names', () => {
  it('map ids to safe names and back', () => {
    const db = { tenantId: 1, databaseId: 1 };
    expect(planeDatabaseName(db)).toBe('pcu_t1_d1');
    expect(planeDbKey(db)).toBe('t1d1');
    expect(parsePlaneDatabaseName('pcu_t1_d1')).toEqual(db);
    expect(parsePlaneDbKey('t1d1')).toEqual(db);
    const big = { tenantId: 2 ** 31 - 1, databaseId: 2 ** 31 - 1 };
    const name = planeDatabaseName(big);
    expect(name).toMatch(/^[a-z0-9_]+$/);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(parsePlaneDatabaseName(name)).toEqual(big);
    expect(parsePlaneDbKey(planeDbKey(big))).toEqual(big);
  });

  it('different ids never share a name', () => {
    // t1 d11 and t11 d1 would collide without the separator.
    expect(planeDatabaseName({ tenantId: 1, databaseId: 11 })).not.toBe(planeDatabaseName({ tenantId: 11, databaseId: 1 }));
    expect(planeDbKey({ tenantId: 1, databaseId: 11 })).not.toBe(planeDbKey({ tenantId: 11, databaseId: 1 }));
  });

  it('refuse what is not an id, and names that are not theirs', () => {
    expect(() => planeDatabaseName({ tenantId: -1, databaseId: 1 })).toThrow(/non-negative integer/);
    expect(() => planeDbKey({ tenantId: 1, databaseId: 1.5 })).toThrow(/non-negative integer/);
    for (const n of ['postgres', 'pcu_t01_d1', 'pcu_t1_d', 'PCU_T1_D1', 'pcu_t1_d1x']) expect(parsePlaneDatabaseName(n)).toBeNull();
    expect(parsePlaneDbKey('t1')).toBeNull();
  });
});
