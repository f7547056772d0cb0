import http from 'node:http';

/** The floor for the HTTP bench: a bare node:http server answering a fixed JSON body. */
const body = JSON.stringify({ principal: { name: 'floor', id: '1', role: 'readonly', tenant_id: '1', method: 'api_key' } });
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
