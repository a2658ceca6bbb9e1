// Load generators and probes: wrk for request rates and latency, curl for bulk
// transfers, and Node sockets for the slow reader and the idle connections.
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';
import { HOST } from './backends.mjs';
import { runCommand } from './processes.mjs';

const LATENCY_UNITS_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseLatencyMs(text) {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  return match === null ? undefined : Number(match[1]) * LATENCY_UNITS_MS[match[2]];
}

/** Extracts the request rate, latency percentiles and error counts from wrk 4 output. */
export function parseWrkOutput(output) {
  const percentile = (label) => {
    const match = new RegExp(`^\\s*${label}%\\s+(\\S+)`, 'm').exec(output);
    return match === null ? undefined : parseLatencyMs(match[1]);
  };
  const number = (pattern) => {
    const match = pattern.exec(output);
    return match === null ? 0 : Number(match[1]);
  };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    requestsPerSecond: number(/^Requests\/sec:\s+([\d.]+)/m),
    requests: number(/^\s*(\d+) requests in/m),
    p50Ms: percentile('50'),
    p99Ms: percentile('99'),
    errors: {
      connect: socketErrors === null ? 0 : Number(socketErrors[1]),
      read: socketErrors === null ? 0 : Number(socketErrors[2]),
      write: socketErrors === null ? 0 : Number(socketErrors[3]),
      timeout: socketErrors === null ? 0 : Number(socketErrors[4]),
      non2xx: number(/Non-2xx or 3xx responses: (\d+)/),
    },
  };
}

/** Runs wrk with one thread against `url` and returns the parsed figures. */
export async function runWrk({ url, connections, durationSeconds, closeEachConnection = false }) {
  const args = ['-t1', `-c${connections}`, `-d${durationSeconds}s`, '--latency', '--timeout', '5s'];
  if (closeEachConnection) args.push('-H', 'Connection: close');
  args.push(url);
  const result = await runCommand('wrk', args, { timeoutMs: (durationSeconds + 30) * 1000 });
  if (result.code !== 0) throw new Error(`wrk ${args.join(' ')} failed (exit ${result.code}${result.timedOut ? ', timed out' : ''}): ${result.stderr.trim()}`);
  const figures = parseWrkOutput(result.stdout);
  if (figures.requests === 0) throw new Error(`wrk completed no request against ${url}:\n${result.stdout}`);
  return figures;
}

/** Downloads `url` with curl into /dev/null; returns the bytes received and the seconds taken. */
export async function curlDownload(url, { expectedBytes, timeoutSeconds }) {
  const args = ['-s', '-o', '/dev/null', '--max-time', String(timeoutSeconds), '-w', '%{http_code} %{size_download} %{time_total}', url];
  const result = await runCommand('curl', args, { timeoutMs: (timeoutSeconds + 10) * 1000 });
  const [status, bytes, seconds] = result.stdout.trim().split(' ');
  if (result.code !== 0 || status !== '200' || Number(bytes) !== expectedBytes) {
    throw new Error(`curl ${url} failed: exit ${result.code}, HTTP ${status}, ${bytes} of ${expectedBytes} bytes`);
  }
  return { bytes: Number(bytes), seconds: Number(seconds) };
}

function httpRequest(path) {
  return `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
}

/**
 * Connects to HOST:port. A no-op listener takes errors after the connect, so an
 * error event cannot crash the harness. Callers that need errors add a listener.
 */
function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Requests `path` and reads the response no faster than `bytesPerSecond` for
 * `durationMs`, then closes the connection. Returns the bytes read.
 */
export async function slowRead({ port, path, bytesPerSecond, durationMs }) {
  const socket = await connect(port);
  socket.write(httpRequest(path));
  const start = performance.now();
  let received = 0;
  let resumeTimer;

  const outcome = await new Promise((resolve) => {
    const stopTimer = setTimeout(() => resolve({ ok: true }), durationMs);
    socket.on('data', (chunk) => {
      received += chunk.length;
      // Pause for as long as the reader is ahead of its schedule.
      const aheadMs = (received / bytesPerSecond) * 1000 - (performance.now() - start);
      if (aheadMs > 0) {
        socket.pause();
        resumeTimer = setTimeout(() => socket.resume(), aheadMs);
      }
    });
    socket.once('error', (error) => {
      clearTimeout(stopTimer);
      resolve({ ok: false, reason: error.message });
    });
    socket.once('end', () => {
      clearTimeout(stopTimer);
      resolve({ ok: false, reason: 'the response ended early' });
    });
  });
  clearTimeout(resumeTimer);
  socket.destroy();
  const seconds = (performance.now() - start) / 1000;
  if (!outcome.ok) throw new Error(`slow reader on port ${port} failed after ${received} bytes: ${outcome.reason}`);
  return { bytes: received, seconds };
}

/**
 * Opens `count` connections, taking the ports in turn. At most `batchSize` connects
 * are in flight, fewer than the default listen backlog of Node.js (511), so a slow
 * accept loop does not make SYNs wait for a retransmit. Returns the open sockets.
 */
export async function openConnections(ports, count, { batchSize = 250 } = {}) {
  const sockets = [];
  try {
    while (sockets.length < count) {
      const batch = [];
      for (let i = 0; i < batchSize && sockets.length + batch.length < count; i++) {
        batch.push(connect(ports[(sockets.length + batch.length) % ports.length]));
      }
      const settled = await Promise.allSettled(batch);
      for (const result of settled) {
        // An idle socket that fails is found by the request afterwards.
        if (result.status === 'fulfilled') sockets.push(result.value);
      }
      const failed = settled.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw new Error(`connect failed after ${sockets.length} connections: ${failed.reason.message}`);
    }
  } catch (error) {
    for (const socket of sockets) socket.destroy();
    throw error;
  }
  return sockets;
}

/**
 * Sends one request for `path` on every socket and returns how many got a
 * "200" status line within `timeoutMs`.
 */
export async function requestOnEach(sockets, path, { timeoutMs = 30_000 } = {}) {
  const request = httpRequest(path);
  const answers = await Promise.all(
    sockets.map(
      (socket) =>
        new Promise((resolve) => {
          let text = '';
          const timer = setTimeout(() => done(false), timeoutMs);
          function done(ok) {
            clearTimeout(timer);
            socket.removeAllListeners('data');
            resolve(ok);
          }
          socket.on('data', (chunk) => {
            text += chunk.toString('latin1');
            if (text.includes('\r\n')) done(text.startsWith('HTTP/1.1 200'));
          });
          socket.once('close', () => done(false));
          socket.write(request);
        }),
    ),
  );
  return answers.filter(Boolean).length;
}

/** Returns the number of ESTABLISHED IPv4 and IPv6 TCP sockets on this host whose remote port is in `ports`. */
export function countEstablishedTo(ports) {
  const wanted = new Set(ports);
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== '01') continue;
      const remotePort = parseInt(fields[2].slice(fields[2].lastIndexOf(':') + 1), 16);
      if (wanted.has(remotePort)) count += 1;
    }
  }
  return count;
}
