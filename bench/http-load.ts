import http from 'node:http';

/**
 * A keep-alive HTTP load generator, run as its own process (so it has its own core):
 * `node http-load.js URL CONNECTIONS SECONDS [header: value]...`. Each connection sends
 * its next request when the previous answer is in; prints {"rps": n, "errors": n}.
 */
const [url, conns, secs, ...rawHeaders] = process.argv.slice(2);
const headers: Record<string, string> = {};
for (const h of rawHeaders) {
  const i = h.indexOf(':');
  headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
const connections = Number(conns);
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const target = new URL(url!);
const deadline = Date.now() + Number(secs) * 1000;
let ok = 0;
let errors = 0;

function one(): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: 'GET', agent, headers }, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        if (res.statusCode === 200) ok++;
        else errors++;
        resolve();
      });
    });
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end();
  });
}

async function loop(): Promise<void> {
  while (Date.now() < deadline) await one();
}

const started = Date.now();
await Promise.all(Array.from({ length: connections }, loop));
const elapsed = (Date.now() - started) / 1000;
agent.destroy();
process.stdout.write(JSON.stringify({ rps: ok / elapsed, errors }));
