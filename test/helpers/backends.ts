// Test backends: each is a real TCP server on 127.0.0.1 (or ::1), port 0, whose
// close() also destroys the connections it has accepted.
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { patternBuffer, patternChunks, patternStream } from './pattern.js';

/** Bytes one backend connection read until the client's EOF, with their digest. */
export interface ReceivedData {
  readonly bytes: number;
  readonly sha256: string;
}

export interface Backend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** `host:port` as written in a config file, with brackets around an IPv6 host. */
  readonly address: string;
  readonly server: Server;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections still open. */
  readonly openConnections: number;
  /** What each connection read until EOF, in the order the EOFs arrived. Only backends that read until EOF fill it. */
  readonly received: readonly ReceivedData[];
  /** Bytes written so far, summed over connections, for backends that send generated data. */
  readonly bytesWritten: number;
  /** Error codes seen on accepted connections, such as ECONNRESET. */
  readonly errorCodes: readonly string[];
  /** Destroys the open connections and closes the server. Safe to call more than once. */
  close(): Promise<void>;
}

export interface BackendOptions {
  /** Used by the identify backend as its reply and in assertion messages. */
  readonly name?: string;
  /** Listen host. Default `127.0.0.1`. */
  readonly host?: string;
}

interface BackendState {
  accepted: number;
  readonly received: ReceivedData[];
  bytesWritten: number;
  readonly errorCodes: string[];
}

type ConnectionHandler = (socket: Socket, state: BackendState) => void;

/**
 * Starts a server that runs `handler` for each connection. Half-open connections are
 * allowed, so each handler decides when to end its write side.
 */
async function startBackend(options: BackendOptions, handler: ConnectionHandler): Promise<Backend> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const state: BackendState = { accepted: 0, received: [], bytesWritten: 0, errorCodes: [] };

  const server = createServer({ allowHalfOpen: true }, (socket) => {
    state.accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', (error: NodeJS.ErrnoException) => state.errorCodes.push(error.code ?? error.message));
    handler(socket, state);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const port = (server.address() as { port: number }).port;
  let closing: Promise<void> | undefined;
  return {
    name: options.name ?? `backend-${port}`,
    host,
    port,
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    server,
    get accepted() {
      return state.accepted;
    },
    get openConnections() {
      return sockets.size;
    },
    received: state.received,
    get bytesWritten() {
      return state.bytesWritten;
    },
    errorCodes: state.errorCodes,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

/** Hashes everything `socket` reads and records it in `state.received` at EOF, then calls `onEof`. */
function recordUntilEof(socket: Socket, state: BackendState, onEof: (data: ReceivedData) => void = () => {}): void {
  const hash = createHash('sha256');
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  socket.on('end', () => {
    const data = { bytes, sha256: hash.digest('hex') };
    state.received.push(data);
    onEof(data);
  });
}

/** Writes the pattern of `totalBytes` for `seed` with backpressure, counting the bytes handed to the socket. */
function sendPattern(socket: Socket, state: BackendState, totalBytes: number, seed: number, end: boolean): void {
  const source = patternStream(totalBytes, seed);
  source.on('data', (chunk: Buffer) => {
    state.bytesWritten += chunk.length;
    if (!socket.write(chunk)) {
      source.pause();
      socket.once('drain', () => source.resume());
    }
  });
  source.on('end', () => {
    if (end) socket.end();
  });
  socket.on('close', () => source.destroy());
}

/** Echoes every byte back and ends its write side after the client's EOF. */
export function startEchoBackend(options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket) => socket.pipe(socket));
}

/**
 * Sends `totalBytes` of the pattern for `seed` to each connection as fast as the
 * socket drains, then ends its write side. The data is generated as it is sent, so
 * gigabytes cost no memory. Input is read and discarded.
 */
export function startSourceBackend(totalBytes: number, seed = 1, options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket, state) => {
    socket.resume();
    sendPattern(socket, state, totalBytes, seed, true);
  });
}

/**
 * Sends `totalBytes` of the pattern for `seed` to each connection in pieces of
 * `pieceBytes`, one piece per turn of its event loop, then ends its write side.
 * A proxy thus reads the bytes in many short reads rather than in full buffers.
 */
export function startTricklingBackend(totalBytes: number, seed: number, pieceBytes: number, options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket, state) => {
    socket.resume();
    const chunks = patternChunks(totalBytes, seed);
    let chunk: Buffer = Buffer.alloc(0);
    let offset = 0;
    const writeNext = (): void => {
      if (socket.destroyed) return;
      if (offset === chunk.length) {
        const next = chunks.next();
        if (next.done === true) {
          socket.end();
          return;
        }
        chunk = next.value;
        offset = 0;
      }
      const piece = chunk.subarray(offset, offset + pieceBytes);
      offset += piece.length;
      state.bytesWritten += piece.length;
      if (socket.write(piece)) setImmediate(writeNext);
      else socket.once('drain', writeNext);
    };
    writeNext();
  });
}

/** Reads until EOF, records the byte count and digest in `received`, then ends its write side. */
export function startSinkBackend(options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket, state) => recordUntilEof(socket, state, () => socket.end()));
}

/** Writes `greeting` as soon as a client connects (server speaks first), then echoes. */
export function startGreetingBackend(greeting: string, options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket) => {
    socket.write(greeting);
    socket.pipe(socket);
  });
}

/** Starts a backend that writes one byte every `intervalMs`, `count` times, then ends its write side. It needs nothing from the client. */
export function startTickingBackend(intervalMs: number, count: number, options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket, state) => {
    let sent = 0;
    const timer = setInterval(() => {
      socket.write('t');
      state.bytesWritten += 1;
      sent += 1;
      if (sent === count) {
        clearInterval(timer);
        socket.end();
      }
    }, intervalMs);
    socket.on('close', () => clearInterval(timer));
  });
}

/**
 * On the first bytes from the client, writes `bytesBeforeReset` of the pattern for
 * `seed`, waits `resetDelayMs` after the kernel has taken the write, and then resets
 * the connection (RST).
 */
export function startResettingBackend(bytesBeforeReset: number, seed = 1, resetDelayMs = 200, options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket, state) => {
    socket.once('data', () => {
      state.bytesWritten += bytesBeforeReset;
      // NOTE: when an RST arrives right after a partial read, libuv (Node 20) reports EOF
      // instead of ECONNRESET, and a Node.js client then sees a clean end. The delay lets
      // every hop read the data before the RST comes. With 0 the RST follows the data at once.
      if (resetDelayMs === 0) {
        socket.write(patternBuffer(bytesBeforeReset, seed));
        socket.resetAndDestroy();
        return;
      }
      socket.write(patternBuffer(bytesBeforeReset, seed), () => {
        setTimeout(() => socket.resetAndDestroy(), resetDelayMs);
      });
    });
  });
}

/**
 * Reads the whole request until the client's EOF (recording it in `received`), then
 * writes `bytesBeforeReset` of the pattern for `seed` and resets the connection at
 * once, so the RST follows the bytes.
 */
export function startResetAfterEofBackend(bytesBeforeReset: number, seed = 1, options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket, state) => {
    recordUntilEof(socket, state, () => {
      state.bytesWritten += bytesBeforeReset;
      socket.write(patternBuffer(bytesBeforeReset, seed));
      socket.resetAndDestroy();
    });
  });
}

/**
 * Reads the whole request until the client's EOF (recording it in `received`), and
 * only then sends `replyBytes` of the pattern for `seed` and ends.
 */
export function startReplyAfterEofBackend(replyBytes: number, seed = 1, options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket, state) => {
    recordUntilEof(socket, state, () => sendPattern(socket, state, replyBytes, seed, true));
  });
}

/**
 * Sends `message` and ends its write side at once, then keeps reading until the
 * client's EOF and records what it read in `received`.
 */
export function startEndFirstBackend(message: string, options: BackendOptions = {}): Promise<Backend> {
  return startBackend(options, (socket, state) => {
    socket.end(message);
    recordUntilEof(socket, state);
  });
}

export interface IdentifyOptions extends BackendOptions {
  readonly name: string;
  /** Whether to keep the connection open after the reply until the client's EOF. Default false. */
  readonly hold?: boolean;
}

/**
 * Replies `<name>\n` to each connection so a test can tell which backend served it.
 * Ends right after the reply unless `hold` is set, in which case it ends after the client's EOF.
 */
export function startIdentifyBackend(options: IdentifyOptions): Promise<Backend> {
  return startBackend(options, (socket) => {
    socket.resume();
    if (options.hold === true) {
      socket.write(`${options.name}\n`);
      socket.on('end', () => socket.end());
    } else {
      socket.end(`${options.name}\n`);
    }
  });
}

/** Returns a port on `host` where nothing listens, found by binding a random port below the ephemeral range and closing it again. */
const CLOSED_PORT_LOW = 20_000;
const CLOSED_PORT_HIGH = 32_000;

export async function findClosedPort(host = '127.0.0.1'): Promise<number> {
  // The port comes from below Linux's default ephemeral range (32768-60999), so a
  // server that another test file binds to port 0 meanwhile cannot take it and
  // turn the "closed" backend into one that accepts.
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = CLOSED_PORT_LOW + Math.floor(Math.random() * (CLOSED_PORT_HIGH - CLOSED_PORT_LOW));
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, host, () => resolve(true));
    });
    if (!bound) continue;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }
  throw new Error(`no free port found on ${host} between ${CLOSED_PORT_LOW} and ${CLOSED_PORT_HIGH}`);
}
