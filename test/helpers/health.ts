// Helpers for the health check and timeout tests. They build config text with
// `health_check`, `passive_check` and backup backends, and start backends that can
// be started again on the same port, a Redis-like PING backend and a listener whose
// connects never complete. They also find the primary's health log lines.
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { exchange } from './client.js';
import { luaString, type TimeoutsSeconds } from './config.js';
import type { LogLine, RspProcess } from './rsp.js';
import { waitFor } from './wait.js';

/** A backend as a config lists it: an address, optionally marked as a backup. */
export type CheckedBackend = string | { readonly address: string; readonly backup: boolean };

/** `health_check` in seconds. `send` and `expect` are left out of the config unless set. */
export interface HealthCheckSeconds {
  readonly interval: number;
  readonly timeout: number;
  readonly rise: number;
  readonly fall: number;
  readonly send?: string;
  readonly expect?: string;
}

export interface PassiveCheckSeconds {
  readonly failures: number;
  readonly cooldown: number;
}

export interface HealthConfigOptions {
  /** Backends by service name. */
  readonly services: Readonly<Record<string, readonly CheckedBackend[]>>;
  /** Listen addresses by service name. A service not listed listens on `127.0.0.1:0`. */
  readonly listen?: Readonly<Record<string, string>>;
  /** Top-level `health_check`. Active checks stay off when unset. */
  readonly healthCheck?: HealthCheckSeconds;
  /** Top-level `passive_check`, or false to turn passive checks off. rsp's default (3 failures, 10 s cool-down) applies when unset. */
  readonly passiveCheck?: PassiveCheckSeconds | false;
  /** Timeouts in seconds. Each unset one defaults to connect 2, idle 60, drain 2. */
  readonly timeouts?: Partial<TimeoutsSeconds>;
}

function luaBackend(backend: CheckedBackend): string {
  if (typeof backend === 'string') return luaString(backend);
  return `{ address = ${luaString(backend.address)}, backup = ${String(backend.backup)} }`;
}

function luaHealthCheck(check: HealthCheckSeconds): string {
  const fields = [`interval = ${check.interval}`, `timeout = ${check.timeout}`, `rise = ${check.rise}`, `fall = ${check.fall}`];
  if (check.send !== undefined) fields.push(`send = ${luaString(check.send)}`);
  if (check.expect !== undefined) fields.push(`expect = ${luaString(check.expect)}`);
  return `{ ${fields.join(', ')} }`;
}

/**
 * Returns the Lua text of a `services` table with the health settings and timeouts
 * at top level, where they are the default of every service. Metrics are served on
 * `127.0.0.1:0`.
 */
export function healthConfig(options: HealthConfigOptions): string {
  const timeouts = { connect: 2, idle: 60, drain: 2, ...options.timeouts };
  const lines = [
    'metrics = "127.0.0.1:0"',
    `timeouts = { connect = ${timeouts.connect}, idle = ${timeouts.idle}, drain = ${timeouts.drain} }`,
  ];
  if (options.healthCheck !== undefined) lines.push(`health_check = ${luaHealthCheck(options.healthCheck)}`);
  if (options.passiveCheck === false) lines.push('passive_check = false');
  else if (options.passiveCheck !== undefined) {
    lines.push(`passive_check = { failures = ${options.passiveCheck.failures}, cooldown = ${options.passiveCheck.cooldown} }`);
  }
  lines.push('services = {');
  for (const [name, backends] of Object.entries(options.services)) {
    const listen = luaString(options.listen?.[name] ?? '127.0.0.1:0');
    lines.push(`  ${name} = { listen = ${listen}, backends = { ${backends.map(luaBackend).join(', ')} } },`);
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** A test server on 127.0.0.1 whose close() also destroys its open connections. */
export interface LocalServer {
  readonly port: number;
  /** `127.0.0.1:port`, as a config file lists it. */
  readonly address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Destroys the open connections and closes the server. Safe to call more than once. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 `port` (0 picks a free one) and runs `onConnection` for each accepted socket. */
async function listenLocal(port: number, onConnection: (socket: Socket) => void): Promise<LocalServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // Health checks close their connection right after the connect or the reply,
    // so a write to a check connection can fail with EPIPE or ECONNRESET.
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const boundPort = (server.address() as { port: number }).port;
  let closing: Promise<void> | undefined;
  return {
    port: boundPort,
    address: `127.0.0.1:${boundPort}`,
    get accepted() {
      return accepted;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

/**
 * Starts a backend that replies `<name>\n` to each connection and ends, on `port`
 * (0 picks a free one). A test that closed a backend calls this with the old port to
 * bring it back. Rejects with EADDRINUSE when the port is taken.
 */
export function startNamedBackend(name: string, port = 0): Promise<LocalServer> {
  return listenLocal(port, (socket) => {
    socket.resume();
    socket.end(`${name}\n`);
  });
}

export interface PingBackend extends LocalServer {
  /** What each connection had received when it sent its reply. */
  readonly requests: readonly string[];
}

/**
 * Starts a Redis-like backend: once a connection has received `PING\r\n`, it writes
 * `reply` (such as `+PONG\r\n` or `-ERR\r\n`) and keeps the connection open.
 */
export async function startPingBackend(reply: string): Promise<PingBackend> {
  const requests: string[] = [];
  const server = await listenLocal(0, (socket) => {
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      received += text;
      if (!received.includes('PING\r\n')) return;
      requests.push(received);
      received = '';
      socket.write(reply);
    });
  });
  return Object.assign(server, { requests });
}

/** Connects `count` times in a row and returns each reply line, or `<endedBy>:<reply>` when the reply was not one clean line. */
export async function collectReplies(port: number, count: number): Promise<string[]> {
  const replies: string[] = [];
  for (let i = 0; i < count; i++) {
    const result = await exchange(port, { keepData: true, timeoutMs: 5_000 });
    const text = result.data?.toString('utf8') ?? '';
    replies.push(result.endedBy === 'end' && text.endsWith('\n') ? text.slice(0, -1) : `${result.endedBy}:${text}`);
  }
  return replies;
}

export type HealthEvent = 'backend is down' | 'backend is up';

/** Returns the primary's lines that report `event` for `backend`, in order. */
export function healthLines(rsp: RspProcess, backend: string, event: HealthEvent): LogLine[] {
  return rsp.lines().filter((line) => line.proc === 'primary' && line.msg === event && line.backend === backend);
}

/** Resolves with the primary's line number `index` (0-based) that reports `event` for `backend`. */
export function waitForHealthLine(rsp: RspProcess, backend: string, event: HealthEvent, timeoutMs = 10_000, index = 0): Promise<LogLine> {
  return waitFor(
    `"${event}" line number ${index + 1} for ${backend}`,
    () => healthLines(rsp, backend, event)[index],
    timeoutMs,
    () => JSON.stringify(rsp.lines().filter((line) => line.proc === 'primary').slice(-10)),
  );
}

/** Milliseconds from `earlier` to `later`, from the ISO `time` fields of two log lines. */
export function millisecondsBetween(earlier: LogLine, later: LogLine): number {
  return Date.parse(String(later.time)) - Date.parse(String(earlier.time));
}

/**
 * Program of the child process behind startUnacceptedListener: it listens with a
 * backlog of 1, prints the port, and then blocks its event loop so it never calls
 * accept(). It exits by itself after two minutes in case the test does not kill it.
 */
const UNACCEPTED_LISTENER_PROGRAM = `
const server = require('node:net').createServer();
server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
  process.exit(0);
});
`;

export interface UnacceptedListener {
  readonly port: number;
  /** `127.0.0.1:port`, as a config file lists it. */
  readonly address: string;
  /** Destroys the connections that fill the accept queue and kills the child process. Safe to call more than once. */
  close(): Promise<void>;
}

/** Resolves with whether a connect to `port` completes within `waitMs`. The socket is added to `sockets` either way. */
function connectsWithin(port: number, waitMs: number, sockets: Socket[]): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    const timer = setTimeout(() => resolve(false), waitMs);
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts a listening socket on 127.0.0.1 whose TCP handshake never completes. A
 * child process listens with a backlog of 1 and never accepts, and this function
 * fills its accept queue. Linux then drops further SYNs to that port, so a connect
 * hangs until the caller's timeout instead of being refused.
 *
 * Rejects when, after 8 filling connections, a connect still completes within 300 ms.
 */
export async function startUnacceptedListener(): Promise<UnacceptedListener> {
  const child = spawn(process.execPath, ['-e', UNACCEPTED_LISTENER_PROGRAM], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: Socket[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const socket of fillers) socket.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    })();
    return closing;
  };

  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the unaccepted listener exited with code ${String(code)} before it listened`)));
      child.stdout.setEncoding('utf8').once('data', (text: string) => resolve(Number(text.trim())));
    });
    // On Linux the accept queue takes backlog + 1 connections, and the first connect
    // that hangs shows that the queue is full.
    let full = false;
    for (let i = 0; i < 8 && !full; i++) full = !(await connectsWithin(port, 300, fillers));
    if (!full) throw new Error(`connects to the unaccepted listener on port ${port} still complete after 8 filling connections`);
    return { port, address: `127.0.0.1:${port}`, close };
  } catch (error) {
    await close();
    throw error;
  }
}
