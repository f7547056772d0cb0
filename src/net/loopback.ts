import { isIP } from 'node:net';

/** A host name or address on this machine: localhost, 127.0.0.0/8, ::1 (and IPv4-mapped). */
export function isLoopbackHost(host: string): boolean {
  let h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h.startsWith('::ffff:') && isIP(h.slice(7)) === 4) h = h.slice(7);
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}
