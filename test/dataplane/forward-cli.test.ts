import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { psql } from '../support/psql.js';
import { spawnServer } from '../support/server.js';

describe('portcullis serve: where SQL goes', () => {
  it('by default SQL runs on PGlite, --deterministic too; PORTCULLIS_DATA_PLANE=off and --data-plane off keep 0A000', async () => {
    for (const args of [['--memory'], ['--deterministic']]) {
      const on = await spawnServer(args, { PORTCULLIS_DATA_PLANE: '' });
      try {
        const r = await psql(on.port, ['-v', 'ON_ERROR_STOP=1'], { input: 'CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (2);\nSELECT sum(a) FROM t;\n' });
        expect(r.stderr).toBe('');
        expect(r.stdout).toBe('CREATE TABLE\nINSERT 0 2\n sum \n-----\n   3\n(1 row)\n\n');
      } finally {
        await on.stop();
      }
    }
    for (const [args, env] of [
      [['--memory'], { PORTCULLIS_DATA_PLANE: 'off' }],
      [['--deterministic', '--data-plane', 'off'], { PORTCULLIS_DATA_PLANE: '' }],
    ] as const) {
      const off = await spawnServer([...args], env);
      try {
        const r = await psql(off.port, [], { input: 'SELECT sum(a) FROM t;\n' });
        expect(r.stderr).toContain('ERROR:  portcullis answers only its admin language on this connection');
        expect(r.stderr).toContain('--data-plane off');
      } finally {
        await off.stop();
      }
    }
  }, 120_000);

  it('refuses a data plane it does not know, and --upstream with --data-plane off', async () => {
    const bad = await cli(['serve', '--memory', '--port', '0', '--http-port', 'off', '--data-plane', 'sqlite']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('data_plane must be embedded or off, got "sqlite"');
    const both = await cli(['serve', '--memory', '--port', '0', '--http-port', 'off', '--data-plane', 'off', '--upstream', 'postgres://u@127.0.0.1:1/db']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('--upstream and --data-plane off cannot be used together');
  });
});
