import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { client, startTestServer } from '../support/server.js';

/**
 * Two OIDC providers a token could both match (same issuer; same audience, or '*' on
 * either side) are refused by CREATE and ALTER with 42710 — but each transaction sees only
 * what was committed when it looked. Two sessions in BEGIN blocks, each making one of the
 * pair, must not both commit: the later COMMIT fails with 40001, as any other conflict
 * between concurrent transactions does, and its retry meets the 42710.
 */
let server: RunningServer;
let a: pg.Client;
let b: pg.Client;

beforeAll(async () => {
  server = await startTestServer();
  [a, b] = await Promise.all([client(server.port), client(server.port)]);
});

afterAll(async () => {
  await Promise.all([a.end(), b.end()]);
  await server.close();
});

const create = (name: string, issuer: string, audience: string) =>
  `CREATE OIDC PROVIDER ${name} WITH (issuer = '${issuer}', jwks_url = '${issuer}jwks', audience = '${audience}')`;

async function providers(issuer: string): Promise<{ name: string; audience: string }[]> {
  const { rows } = await a.query('SHOW OIDC PROVIDERS');
  return rows.filter((r) => r.issuer === issuer).map((r) => ({ name: r.name, audience: r.audience }));
}

/** Runs `first` in a and `second` in b, each in a block opened before either wrote; a commits first. */
async function race(first: string, second: string): Promise<unknown> {
  await a.query('BEGIN');
  await b.query('BEGIN');
  await a.query(first);
  await b.query(second);
  await a.query('COMMIT');
  const outcome = await b.query('COMMIT').then(
    () => null,
    (e: pg.DatabaseError) => e,
  );
  // The failed commit ended b's transaction: b is usable again.
  expect((await b.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  return outcome;
}

describe('concurrent OIDC provider writes', () => {
  it('fail the later of two creates with the same issuer and audience with 40001; its retry is 42710', async () => {
    const iss = 'https://same.example/';
    const err = await race(create('same_a', iss, 'api'), create('same_b', iss, 'api'));
    expect(err).toMatchObject({
      code: '40001',
      message: 'could not serialize access due to concurrent update',
      detail: `OIDC provider "same_b" and OIDC provider "same_a", committed by another session after this transaction read the providers, would both match tokens of issuer "${iss}".`,
      hint: 'Retry the transaction.',
    });
    expect(await providers(iss)).toEqual([{ name: 'same_a', audience: 'api' }]);
    await expect(b.query(create('same_b', iss, 'api'))).rejects.toMatchObject({ code: '42710', message: `OIDC provider "same_a" already has issuer "${iss}" and audience "api"` });
  });

  it("fail the later of a create with audience '*' and one with an audience of the same issuer", async () => {
    const iss = 'https://star.example/';
    expect(await race(create('star_one', iss, 'api'), create('star_any', iss, '*'))).toMatchObject({ code: '40001' });
    expect(await providers(iss)).toEqual([{ name: 'star_one', audience: 'api' }]);
    const iss2 = 'https://star-first.example/';
    expect(await race(create('star2_any', iss2, '*'), create('star2_one', iss2, 'api'))).toMatchObject({ code: '40001' });
    expect(await providers(iss2)).toEqual([{ name: 'star2_any', audience: '*' }]);
  });

  it('fail an ALTER to the audience a concurrent create took, and a create of the audience a concurrent ALTER took', async () => {
    const iss = 'https://alter.example/';
    await a.query(create('alt_one', iss, 'old'));
    expect(await race(create('alt_two', iss, 'new'), `ALTER OIDC PROVIDER alt_one SET (audience = 'new')`)).toMatchObject({ code: '40001' });
    expect(await providers(iss)).toEqual([
      { name: 'alt_one', audience: 'old' },
      { name: 'alt_two', audience: 'new' },
    ]);
    expect(await race(`ALTER OIDC PROVIDER alt_one SET (audience = 'newer')`, create('alt_three', iss, 'newer'))).toMatchObject({ code: '40001' });
    expect(await providers(iss)).toEqual([
      { name: 'alt_one', audience: 'newer' },
      { name: 'alt_two', audience: 'new' },
    ]);
  });

  it('commit both when the providers do not clash, and when an ALTER keeps issuer and audience', async () => {
    const iss = 'https://apart.example/';
    expect(await race(create('apart_one', iss, 'one'), create('apart_two', iss, 'two'))).toBeNull();
    expect(await race(`ALTER OIDC PROVIDER apart_one SET (max_role = 'readonly')`, create('apart_three', iss, 'three'))).toBeNull();
    expect(await providers(iss)).toEqual([
      { name: 'apart_one', audience: 'one' },
      { name: 'apart_three', audience: 'three' },
      { name: 'apart_two', audience: 'two' },
    ]);
  });
});
