// `npm run demo`: starts two small HTTP backends on 127.0.0.1:8081 and :8082,
// then runs rsp on config/demo.lua as a child process, the way a user runs it.
// Ctrl-C stops rsp (which drains) and then the backends.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';

const DEMO_PORTS = [8081, 8082];
const mainScript = fileURLToPath(new URL('./main.js', import.meta.url));
const demoConfig = fileURLToPath(new URL('../../config/demo.lua', import.meta.url));

function startDemoBackend(index: number, port: number): Promise<Server> {
  const server = createServer((request, response) => {
    response.setHeader('content-type', 'text/plain');
    response.end(`Hello from demo backend ${index} (127.0.0.1:${port}), ${request.method} ${request.url}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`demo backend failed to listen on 127.0.0.1:${port}: ${error.message}`)));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const backends = await Promise.all(DEMO_PORTS.map((port, index) => startDemoBackend(index + 1, port)));
console.error(`demo backends listening on ${DEMO_PORTS.map((port) => `127.0.0.1:${port}`).join(' and ')}`);

const rsp = spawn(process.execPath, [mainScript, ...process.argv.slice(2), demoConfig], { stdio: ['inherit', 'pipe', 'inherit'] });
let hintShown = false;
rsp.stdout.on('data', (chunk: Buffer) => {
  process.stdout.write(chunk);
  if (!hintShown && chunk.includes('"msg":"rsp started"')) {
    hintShown = true;
    console.error('rsp listens on 127.0.0.1:8000; try: curl localhost:8000 (metrics: curl localhost:9100/metrics)');
  }
});
// The terminal sends Ctrl-C to the whole process group, rsp included; a SIGTERM
// sent to this process alone is passed on.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => rsp.kill('SIGTERM'));
rsp.on('exit', (code, signal) => {
  for (const server of backends) server.close();
  process.exitCode = code ?? (signal === null ? 1 : 128);
});
