// The two HTTP backends behind every target: nginx serving static files, or a Node
// HTTP server with the same files when nginx is missing.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, waitForPort } from './processes.mjs';
import { which } from './tools.mjs';

export const HOST = '127.0.0.1';

const MiB = 2 ** 20;

/** Files the backends serve, by URL path. */
export const FILES = {
  small: { path: '/small.txt', bytes: 128 },
  bulk32m: { path: '/32m.bin', bytes: 32 * MiB },
  bulk256m: { path: '/256m.bin', bytes: 256 * MiB },
  bulk1g: { path: '/1g.bin', bytes: 1024 * MiB },
};

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Writes `bytes` bytes of a repeated random 1 MiB block. The data is real, not a
 * sparse file: the first read of a hole makes the kernel build zero pages, which
 * would slow down whichever target reads a file first. Writing it also leaves it in
 * the page cache.
 */
function writeBulkFile(path, bytes, block) {
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < bytes; written += block.length) {
      writeSync(fd, block, 0, Math.min(block.length, bytes - written));
    }
  } finally {
    closeSync(fd);
  }
}

/** Creates the document root with every file in FILES (1.3 GiB in all). */
export function createDocumentRoot(tmpDir) {
  const root = join(tmpDir, 'www');
  mkdirSync(root, { recursive: true });
  // nginx workers run as an unprivileged user, which must reach the files.
  chmodSync(tmpDir, 0o755);
  chmodSync(root, 0o755);
  const block = randomBytes(MiB);
  for (const file of Object.values(FILES)) {
    const path = join(root, file.path);
    if (file === FILES.small) {
      const line = 'rsp benchmark small response\n';
      writeFileSync(path, line.repeat(Math.ceil(file.bytes / line.length)).slice(0, file.bytes));
    } else {
      writeBulkFile(path, file.bytes, block);
    }
    chmodSync(path, 0o644);
  }
  return root;
}

function nginxBackendConfig({ prefix, port, root, maxOpenFiles }) {
  return `# nginx HTTP backend of the rsp benchmark, written by bench/lib/backends.mjs.
worker_processes 1;
worker_rlimit_nofile ${maxOpenFiles};
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  # Keep-alive connections must last through a whole scenario: the defaults would
  # close one after 1000 requests or 75 s, and an idle connection that sent nothing
  # after 60 s.
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  client_header_timeout 600s;
  default_type application/octet-stream;
  types { text/plain txt; }
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen ${HOST}:${port};
    root ${root};
  }
}
`;
}

async function startNginxBackend(index, { tmpDir, root, maxOpenFiles }) {
  const prefix = join(tmpDir, `backend-${index}`);
  mkdirSync(prefix, { recursive: true });
  const port = await freePort();
  const configFile = join(prefix, 'nginx.conf');
  writeFileSync(configFile, nginxBackendConfig({ prefix, port, root, maxOpenFiles }));
  const handle = startProcess(`backend-${index} (nginx)`, which('nginx'), ['-e', join(prefix, 'error.log'), '-p', prefix, '-c', configFile, '-g', 'daemon off;'], {
    logFile: join(prefix, 'output.log'),
  });
  await waitForPort(HOST, port, { handle });
  return { name: `backend-${index}`, port, handle };
}

async function startNodeBackend(index, { tmpDir, root }) {
  const port = await freePort();
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'node-backend.mjs');
  const handle = startProcess(`backend-${index} (node)`, process.execPath, [script, '--port', String(port), '--root', root], {
    logFile: join(tmpDir, `backend-${index}.log`),
  });
  await waitForPort(HOST, port, { handle });
  return { name: `backend-${index}`, port, handle };
}

/**
 * Starts two backends of the kind `preferred` ('nginx' or 'node'). nginx falls back
 * to Node with a warning when the nginx binary is missing.
 */
export async function startBackends({ preferred, tmpDir, maxOpenFiles, warn }) {
  const root = createDocumentRoot(tmpDir);
  let kind = preferred;
  if (kind === 'nginx' && which('nginx') === undefined) {
    warn('nginx not found: the backends are the Node HTTP server bench/node-backend.mjs, which is slower than nginx');
    kind = 'node';
  }
  const start = kind === 'nginx' ? startNginxBackend : startNodeBackend;
  const backends = [];
  for (const index of [1, 2]) backends.push(await start(index, { tmpDir, root, maxOpenFiles }));
  return { kind, root, backends };
}
