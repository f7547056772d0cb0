import { describe, expect, it } from 'vitest';
import { parseConnectionString } from '../../src/store/pg-connect.js';

/** libpq connection strings as the catalog store reads them (node-postgres takes one host and no target_session_attrs). */
describe('the catalog connection string', () => {
  it('a URL with several hosts: one connection string per host, in order, the rest kept; the password never in the safe form', () => {
    const p = parseConnectionString('postgres://pcu:s%40cret@db1:5432,db2:5433,[::1]:5434/cat?sslmode=verify-full&sslrootcert=/ca.pem&target_session_attrs=read-write&connect_timeout=3');
    expect(p.hosts).toEqual([
      { url: 'postgres://pcu:s%40cret@db1:5432/cat?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=3', name: 'db1:5432' },
      { url: 'postgres://pcu:s%40cret@db2:5433/cat?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=3', name: 'db2:5433' },
      { url: 'postgres://pcu:s%40cret@[::1]:5434/cat?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=3', name: '[::1]:5434' },
    ]);
    expect(p.sessionAttrs).toBe('read-write');
    expect(p.connectTimeoutSeconds).toBe(3);
    expect(p.safe).toBe('postgres://pcu@db1:5432,db2:5433,[::1]:5434/cat?sslmode=verify-full&sslrootcert=/ca.pem&target_session_attrs=read-write&connect_timeout=3');
  });

  it('one host: as given, any session, 10 s to connect', () => {
    const p = parseConnectionString('postgresql://u:pw@127.0.0.1:6000/x');
    expect(p.hosts).toEqual([{ url: 'postgresql://u:pw@127.0.0.1:6000/x', name: '127.0.0.1:6000' }]);
    expect(p.sessionAttrs).toBe('any');
    expect(p.connectTimeoutSeconds).toBe(10);
    expect(p.safe).toBe('postgresql://u@127.0.0.1:6000/x');
  });

  it("libpq's keyword/value form: hosts with a port each (or one for all), quoted values, the password masked", () => {
    const p = parseConnectionString("host=a,b port=5432,5433 dbname=cat user=pcu password='it\\'s \\\\ x' sslmode=verify-full target_session_attrs=primary");
    expect(p.hosts.map((h) => h.name)).toEqual(['a:5432', 'b:5433']);
    expect(p.hosts[0]!.url).toBe(`postgres://pcu:${encodeURIComponent("it's \\ x")}@a:5432/cat?sslmode=verify-full`);
    expect(p.sessionAttrs).toBe('primary');
    expect(p.safe).not.toContain('x');
    expect(parseConnectionString('host=h1,h2 port=7 dbname=d').hosts.map((h) => h.name)).toEqual(['h1:7', 'h2:7']);
  });

  it('refuses what it cannot honour, naming it', () => {
    expect(() => parseConnectionString('postgres://u@h/d?target_session_attrs=read-only')).toThrow('target_session_attrs=read-only is not supported for the catalog');
    expect(() => parseConnectionString('host=a,b,c port=1,2')).toThrow('names 3 hosts and 2 ports');
    expect(() => parseConnectionString('nonsense')).toThrow('neither a postgres:// URL nor key=value pairs');
  });
});
