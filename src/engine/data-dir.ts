import path from 'node:path';
import { AuditTrail } from '../audit/audit-trail.js';
import { PLAINTEXT, type Keys } from '../store/cipher.js';
import { LogStore, type LogIo } from '../store/log-store.js';
import type { EngineOptions } from './engine.js';

/**
 * What an engine on a data directory is made of — the catalog's log and snapshot, the audit
 * trail, the JWKS cache — all under the same keys. Server, offline tools and rekey open a
 * data directory only through this.
 */
export function dataDirOptions(
  dir: string,
  opts: { keys?: Keys; warn?: (line: string) => void; io?: LogIo } = {},
): Pick<EngineOptions, 'store' | 'openAudit' | 'jwksDir' | 'jwksCipher'> & { store: LogStore } {
  const keys = opts.keys ?? PLAINTEXT;
  const warn = opts.warn ?? ((l: string) => process.stderr.write(`${l}\n`));
  return {
    store: new LogStore(dir, warn, opts.io, keys),
    openAudit: () => AuditTrail.open(dir, keys, warn),
    jwksDir: path.join(dir, 'jwks'),
    jwksCipher: keys.write,
  };
}
