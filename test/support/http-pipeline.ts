import net from 'node:net';

export interface PipelinedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * POSTs each body to `path` over `sockets` keep-alive connections, HTTP/1.1-pipelined (all
 * of a connection's requests written at once, its responses read in order): thousands of
 * requests in a second or two, where one fetch each costs a millisecond or more. The
 * answers come back in the order of `bodies`. Responses must carry a Content-Length (the
 * HTTP API's all do).
 */
export async function pipelinedPosts(port: number, path: string, bodies: string[], sockets = 8, contentType = 'application/x-www-form-urlencoded'): Promise<PipelinedResponse[]> {
  const per = Math.ceil(bodies.length / sockets);
  const parts = await Promise.all(Array.from({ length: sockets }, (_, i) => onOneSocket(port, path, bodies.slice(i * per, (i + 1) * per), contentType)));
  return parts.flat();
}

function onOneSocket(port: number, path: string, bodies: string[], contentType: string): Promise<PipelinedResponse[]> {
  if (bodies.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const out: PipelinedResponse[] = [];
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of head.slice(1)) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length']);
        if (!Number.isInteger(length)) return reject(new Error(`a response without Content-Length: ${head[0]}`));
        if (buf.length < end + 4 + length) return;
        out.push({ status: Number(head[0]!.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + length).toString('utf8') });
        buf = buf.subarray(end + 4 + length);
        if (out.length === bodies.length) {
          sock.end();
          return resolve(out);
        }
      }
    });
    sock.on('error', reject);
    sock.on('close', () => {
      if (out.length < bodies.length) reject(new Error(`the server closed the connection after ${out.length} of ${bodies.length} responses`));
    });
    sock.write(bodies.map((b) => `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: ${contentType}\r\ncontent-length: ${Buffer.byteLength(b)}\r\n\r\n${b}`).join(''));
  });
}
