import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LogStore } from '../src/store/log-store.js';

/**
 * The floor for the write workloads: the least a Node.js server on this machine can do per
 * statement. It speaks just enough of the protocol for pgbench (trust login, simple
 * queries), parses and checks nothing, and answers every query with `GRANT ROLE`:
 * - `durable`: after appending a small commit to portcullis's own log (`LogStore`: group
 *   commit, the flusher thread, fdatasync), as every write statement must;
 * - `reply`: at once, with no disk (the socket alone).
 * What portcullis does beyond this is parsing, privileges, the catalog and the audit trail.
 */
const mode = process.argv[2] === 'reply' ? 'reply' : 'durable';
const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-floor-'));
const store = new LogStore(path.join(dir, 'data'), () => {});
await store.load(() => {}, () => {});

const message = (type: string, body: Buffer) => {
  const m = Buffer.allocUnsafe(5 + body.length);
  m.write(type, 0, 'latin1');
  m.writeInt32BE(4 + body.length, 1);
  body.copy(m, 5);
  return m;
};
const cstring = (s: string) => Buffer.from(`${s}\0`);
const LOGGED_IN = Buffer.concat([
  message('R', Buffer.from([0, 0, 0, 0])),
  message('S', Buffer.concat([cstring('server_version'), cstring('16.0')])),
  message('S', Buffer.concat([cstring('client_encoding'), cstring('UTF8')])),
  message('S', Buffer.concat([cstring('standard_conforming_strings'), cstring('on')])),
  message('S', Buffer.concat([cstring('DateStyle'), cstring('ISO, MDY')])),
  message('S', Buffer.concat([cstring('integer_datetimes'), cstring('on')])),
  message('K', Buffer.alloc(8)),
  message('Z', Buffer.from('I')),
]);
const DONE = Buffer.concat([message('C', cstring('GRANT ROLE')), message('Z', Buffer.from('I'))]);
const COMMIT = [{ op: 'insert' as const, table: 'tenants' as const, row: { id: 1, name: 'floor', createdAt: 0 } }];

const server = net.createServer((socket) => {
  let buf = Buffer.alloc(0);
  let started = false;
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      if (!started) {
        if (buf.length < 4 || buf.length < buf.readInt32BE(0)) return;
        const len = buf.readInt32BE(0);
        const code = buf.readInt32BE(4);
        buf = buf.subarray(len);
        if (code === 80877103) socket.write('N'); // SSLRequest: no
        else {
          started = true;
          socket.write(LOGGED_IN);
        }
        continue;
      }
      if (buf.length < 5 || buf.length < 1 + buf.readInt32BE(1)) return;
      const type = buf[0];
      buf = buf.subarray(1 + buf.readInt32BE(1));
      if (type === 0x58) return void socket.end(); // Terminate
      if (type !== 0x51) continue; // only simple queries
      if (mode === 'reply') socket.write(DONE);
      else store.append(COMMIT).then(() => socket.write(DONE), () => socket.destroy());
    }
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => {
  server.close();
  void store.close().finally(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
