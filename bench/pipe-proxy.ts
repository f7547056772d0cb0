import net from 'node:net';

/**
 * A bare TCP proxy in Node.js (`node dist/bench/pipe-proxy.js <postgres port>`): each client
 * gets its own socket to PostgreSQL on loopback and the bytes are piped both ways, nothing
 * parsed. What any Node.js process between pgbench and PostgreSQL costs on this machine; it
 * prints its port on stdout when listening.
 */
const target = Number(process.argv[2]);
const server = net.createServer((client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: target });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => console.log((server.address() as net.AddressInfo).port));
process.on('SIGTERM', () => process.exit(0));
