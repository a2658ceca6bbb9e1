// Traffic for the operations tests: a backend that serves short requests and long
// streams, a slow upload sink, client loops of short connections, and transfers
// read or written at a bounded rate so they stay open for seconds.
import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { exchange, openConnection } from './client.js';
import { patternStream } from './pattern.js';

/** Interval of the rate limiters in this file. */
const TICK_MS = 50;

/** A test server on 127.0.0.1 port 0 whose close() also destroys its open connections. */
export interface TestServer {
  readonly name: string;
  readonly port: number;
  /** `127.0.0.1:port`, as a config file lists it. */
  readonly address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Destroys the open connections and closes the server. Safe to call more than once. */
  close(): Promise<void>;
}

async function listenLocal(name: string, onConnection: (socket: Socket) => void): Promise<TestServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // Several tests cause errors on purpose (resets, killed workers). Each handler reports the ones it needs.
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  let closing: Promise<void> | undefined;
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
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

/** Calls `onLine` with the first line a socket receives and the bytes that came after it. */
function readFirstLine(socket: Socket, onLine: (line: string, rest: Buffer) => void): void {
  let buffered = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk]);
    const newline = buffered.indexOf(0x0a);
    if (newline < 0) return;
    socket.off('data', onData);
    onLine(buffered.subarray(0, newline).toString('utf8'), buffered.subarray(newline + 1));
  };
  socket.on('data', onData);
}

/**
 * Starts a backend that reads one request line and replies to it:
 * - `hello <token>`: replies `<name> <token>\n` and ends its write side.
 * - `stream <bytes> <seed>`: replies `<name>\n`, then `bytes` of the pattern for
 *   `seed` as fast as the connection drains, then ends.
 * - `echo`: echoes every later byte and ends its write side after the client's EOF.
 * After `hello` and `stream`, further bytes are read and discarded. An unknown
 * request is reset.
 */
export function startCommandBackend(name: string): Promise<TestServer> {
  return listenLocal(name, (socket) => {
    readFirstLine(socket, (line, rest) => {
      const [command, ...fields] = line.split(' ');
      if (command === 'hello' && fields.length === 1) {
        socket.resume();
        socket.end(`${name} ${fields[0]}\n`);
        return;
      }
      if (command === 'echo' && fields.length === 0) {
        socket.write(rest);
        socket.pipe(socket);
        return;
      }
      if (command === 'stream' && fields.length === 2) {
        socket.resume();
        socket.write(`${name}\n`);
        const source = patternStream(Number(fields[0]), Number(fields[1]));
        source.pipe(socket);
        socket.on('close', () => source.destroy());
        return;
      }
      socket.resetAndDestroy();
    });
  });
}

/** What one connection to a throttled sink delivered. */
export interface SinkUpload {
  /** Port of rsp's side of the connection, which identifies the worker that opened it. */
  readonly remotePort: number;
  readonly bytes: number;
  readonly sha256: string;
  /** `end` for the client's EOF, otherwise the error code or `close`. */
  readonly endedBy: string;
}

export interface ThrottledSink extends TestServer {
  /** Connections that have finished, in the order they finished. */
  readonly uploads: readonly SinkUpload[];
  /** The rsp-side ports of the connections accepted so far. */
  readonly remotePorts: readonly number[];
}

/**
 * Starts a backend that reads each connection at about `bytesPerSecond`. At the
 * client's EOF it replies `<bytes> <sha256>\n` and ends. The slow reads make rsp
 * stop reading from the client, so unread upload bytes wait in rsp's socket buffers.
 */
export async function startThrottledSink(bytesPerSecond: number): Promise<ThrottledSink> {
  const uploads: SinkUpload[] = [];
  const remotePorts: number[] = [];
  const server = await listenLocal('sink', (socket) => {
    remotePorts.push(socket.remotePort ?? 0);
    const hash = createHash('sha256');
    let bytes = 0;
    let allowance = 0;
    let finished = false;
    const timer = setInterval(() => {
      allowance += (bytesPerSecond * TICK_MS) / 1000;
      if (bytes < allowance) socket.resume();
    }, TICK_MS);
    const finish = (endedBy: string): void => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      const upload = { remotePort: socket.remotePort ?? 0, bytes, sha256: hash.digest('hex'), endedBy };
      uploads.push(upload);
      if (endedBy === 'end') socket.end(`${upload.bytes} ${upload.sha256}\n`);
    };
    socket.pause();
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (bytes >= allowance) socket.pause();
    });
    socket.on('end', () => finish('end'));
    socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    socket.on('close', () => finish('close'));
  });
  return {
    get name() {
      return server.name;
    },
    get port() {
      return server.port;
    },
    get address() {
      return server.address;
    },
    get accepted() {
      return server.accepted;
    },
    close: () => server.close(),
    uploads,
    remotePorts,
  };
}

/** A client transfer running in the background. */
export interface Transfer<T> {
  readonly socket: Socket;
  /** Whether the result has settled. */
  readonly done: boolean;
  /** Payload bytes received so far (downloads) or handed to the socket so far (uploads). */
  readonly progress: number;
  readonly result: Promise<T>;
}

export interface DownloadResult {
  /** The backend's name from the reply's first line. */
  readonly backend: string;
  /** Bytes after the first line. */
  readonly bytes: number;
  readonly sha256: string;
  /** `end` for the peer's FIN, otherwise the error code or `close`. */
  readonly endedBy: string;
}

/**
 * Requests `stream <bytes> <seed>` from a command backend behind `port` and reads the
 * reply at about `bytesPerSecond`, so the transfer takes about bytes / bytesPerSecond
 * seconds. The socket is destroyed when the reply ends or after `timeoutMs`.
 */
export async function startDownload(
  port: number,
  bytes: number,
  seed: number,
  bytesPerSecond: number,
  timeoutMs = 60_000,
): Promise<Transfer<DownloadResult>> {
  const socket = await openConnection(port);
  socket.end(`stream ${bytes} ${seed}\n`);
  const hash = createHash('sha256');
  let header: Buffer | undefined = Buffer.alloc(0);
  let backend = '';
  let received = 0;
  let allowance = 0;
  let done = false;

  const result = new Promise<DownloadResult>((resolve) => {
    const finish = (endedBy: string): void => {
      if (done) return;
      done = true;
      clearInterval(ticker);
      clearTimeout(timer);
      socket.destroy();
      resolve({ backend, bytes: received, sha256: hash.digest('hex'), endedBy });
    };
    const ticker = setInterval(() => {
      allowance += (bytesPerSecond * TICK_MS) / 1000;
      if (received < allowance) socket.resume();
    }, TICK_MS);
    const timer = setTimeout(() => finish(`no end within ${timeoutMs} ms`), timeoutMs);

    socket.on('data', (chunk: Buffer) => {
      let body = chunk;
      if (header !== undefined) {
        header = Buffer.concat([header, chunk]);
        const newline = header.indexOf(0x0a);
        if (newline < 0) return;
        backend = header.subarray(0, newline).toString('utf8');
        body = header.subarray(newline + 1);
        header = undefined;
      }
      received += body.length;
      hash.update(body);
      if (received >= allowance) socket.pause();
    });
    socket.once('end', () => finish('end'));
    socket.once('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    socket.once('close', () => finish('close'));
  });

  return {
    socket,
    get done() {
      return done;
    },
    get progress() {
      return received;
    },
    result,
  };
}

export interface UploadResult {
  /** The sink's reply line, `<bytes> <sha256>`, or '' when none came. */
  readonly reply: string;
  /** `end` for the peer's FIN, otherwise the error code (such as ECONNRESET or EPIPE) or `close`. */
  readonly endedBy: string;
}

/**
 * Sends `bytes` of the pattern for `seed` to `port` as fast as the connection takes
 * them, ends the write side, and reads the reply. Resolves with the first error code
 * instead of rejecting.
 */
export async function startUpload(port: number, bytes: number, seed: number, timeoutMs = 60_000): Promise<Transfer<UploadResult>> {
  const socket = await openConnection(port);
  const source = patternStream(bytes, seed);
  let reply = '';
  let done = false;

  const result = new Promise<UploadResult>((resolve) => {
    const finish = (endedBy: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      source.destroy();
      socket.destroy();
      resolve({ reply: reply.trimEnd(), endedBy });
    };
    const timer = setTimeout(() => finish(`no end within ${timeoutMs} ms`), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => (reply += text));
    socket.once('end', () => finish('end'));
    socket.once('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    socket.once('close', () => finish('close'));
  });
  let sent = 0;
  source.on('data', (chunk: Buffer) => (sent += chunk.length));
  source.pipe(socket);

  return {
    socket,
    get done() {
      return done;
    },
    get progress() {
      return sent;
    },
    result,
  };
}

/** The outcome of one short request. */
export interface HelloResult {
  /** The backend that replied, or '' when there was no well-formed reply. */
  readonly backend: string;
  /** Why the request failed, or undefined when the reply was complete and correct. */
  readonly failure: string | undefined;
}

/**
 * Makes one `hello` request through `port` and checks the reply: a backend name
 * followed by the token, then a clean end. Never rejects.
 */
export async function helloOnce(port: number, token: string): Promise<HelloResult> {
  let result;
  try {
    result = await exchange(port, { send: `hello ${token}\n`, keepData: true, timeoutMs: 10_000 });
  } catch (error) {
    return { backend: '', failure: `${token}: ${(error as Error).message}` };
  }
  const reply = result.data?.toString('utf8') ?? '';
  const match = /^(\S+) (\S+)\n$/.exec(reply);
  const backend = match?.[1] ?? '';
  if (result.endedBy !== 'end') return { backend, failure: `${token}: ended by ${result.endedBy} after ${JSON.stringify(reply)}` };
  if (match === null || match[2] !== token) return { backend, failure: `${token}: unexpected reply ${JSON.stringify(reply)}` };
  return { backend, failure: undefined };
}

/** One short request made by a client loop, with the test phases it spanned. */
export interface ShortResult extends HelloResult {
  /** The value of `phase()` when the connection started. */
  readonly startPhase: number;
  /** The value of `phase()` when the reply had been checked. */
  readonly endPhase: number;
}

export interface ShortLoops {
  /** Results of the connections finished so far, in the order they finished. */
  readonly results: readonly ShortResult[];
  /** Lets each loop finish its current connection, then resolves. */
  stop(): Promise<void>;
}

/**
 * Runs `loops` concurrent client loops, each making `hello` requests one after
 * another until stop() is called or `maxDurationMs` has passed. `phase` is read
 * when each connection starts and ends, so a test can tell which backends that
 * connection was allowed to reach.
 */
export function startShortLoops(port: number, loops: number, phase: () => number, maxDurationMs = 60_000): ShortLoops {
  const results: ShortResult[] = [];
  const deadline = Date.now() + maxDurationMs;
  let stopped = false;
  let counter = 0;

  const runLoop = async (loop: number): Promise<void> => {
    while (!stopped && Date.now() < deadline) {
      counter++;
      const startPhase = phase();
      const result = await helloOnce(port, `loop${loop}-${counter}`);
      results.push({ ...result, startPhase, endPhase: phase() });
    }
  };
  const running = Promise.all(Array.from({ length: loops }, (_, loop) => runLoop(loop)));

  return {
    results,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

/**
 * Tries a TCP connect to 127.0.0.1:`port` and closes the socket at once. Resolves
 * with `connected`, or the error code such as `ECONNREFUSED`.
 */
export function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve(error.code ?? error.message);
    });
  });
}
