// Fallback HTTP backend of the benchmark, used when nginx is missing: serves the
// files of one folder on 127.0.0.1 with keep-alive.
//   node bench/node-backend.mjs --port 8081 --root /tmp/rsp-bench-x/www
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';
import { URL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, root: { type: 'string' } } });
if (values.port === undefined || values.root === undefined) {
  console.error('usage: node bench/node-backend.mjs --port <port> --root <folder>');
  process.exit(2);
}

const server = createServer((request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url, 'http://localhost').pathname));
  if (path.includes('..')) {
    response.writeHead(400).end();
    return;
  }
  const file = join(values.root, path);
  let size;
  try {
    size = statSync(file).size;
  } catch {
    response.writeHead(404).end();
    return;
  }
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  const stream = createReadStream(file, { highWaterMark: 256 * 1024 });
  stream.on('error', () => response.destroy());
  stream.pipe(response);
});

// Idle connections must survive a whole scenario, as with the nginx backend.
server.keepAliveTimeout = 600_000;
server.headersTimeout = 600_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'node backend listening', port: server.address().port }));
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
