// Client side of the integration tests: connect to rsp, send, and collect the
// reply with its SHA-256 digest and the way the connection ended.
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';

export interface ReceiveResult {
  readonly bytes: number;
  readonly sha256: string;
  /** The received bytes, kept only when `keepData` is set. */
  readonly data: Buffer | undefined;
  /**
   * How the read side finished: `end` for the peer's FIN, the error code (such as
   * `ECONNRESET`) for an error, or `close` when the socket closed without either.
   */
  readonly endedBy: string;
  /** Milliseconds from the start of receiving to `endedBy`. */
  readonly elapsedMs: number;
}

export interface ReceiveOptions {
  readonly keepData?: boolean;
  /** Milliseconds after which the socket is destroyed and the promise rejected. Default 30 s. */
  readonly timeoutMs?: number;
}

/**
 * Opens a connection to `host:port` with half-open sockets allowed, so the caller
 * ends its write side explicitly. Rejects with the connect error.
 */
export function openConnection(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, allowHalfOpen: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      // Callers watch errors through receiveAll or their own listener. This no-op listener
      // stops a late error, on a socket the test no longer reads, from crashing the test run.
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

/**
 * Reads from `socket` until its read side finishes (FIN, error or close) and returns
 * what arrived. Errors are reported in `endedBy`, not thrown. Rejects only on the
 * timeout, with the byte count so far in the message.
 */
export function receiveAll(socket: Socket, options: ReceiveOptions = {}): Promise<ReceiveResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const startedAt = Date.now();
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let bytes = 0;

  return new Promise((resolve, reject) => {
    const finish = (endedBy: string): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      const data = options.keepData === true ? Buffer.concat(chunks) : undefined;
      resolve({ bytes, sha256: hash.digest('hex'), data, endedBy, elapsedMs: Date.now() - startedAt });
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      hash.update(chunk);
      if (options.keepData === true) chunks.push(chunk);
    };
    const onEnd = (): void => finish('end');
    const onError = (error: NodeJS.ErrnoException): void => finish(error.code ?? error.message);
    const onClose = (): void => finish('close');
    const timer = setTimeout(() => {
      socket.off('error', onError);
      socket.destroy();
      reject(new Error(`The connection did not end within ${timeoutMs} ms (received ${bytes} bytes)`));
    }, timeoutMs);

    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
    socket.once('close', onClose);
    // A new 'data' listener does not resume a socket that a caller paused, as readLine does.
    socket.resume();
  });
}

export interface ExchangeOptions extends ReceiveOptions {
  readonly host?: string;
  /** Bytes or a stream to send. The write side is ended after it unless `endAfterSend` is false. */
  readonly send?: Buffer | string | Readable;
  /** Defaults to true. */
  readonly endAfterSend?: boolean;
}

/**
 * Connects to `port`, sends `send`, reads until the read side finishes, and destroys
 * the socket. The usual one-shot client of the tests.
 */
export async function exchange(port: number, options: ExchangeOptions = {}): Promise<ReceiveResult> {
  const socket = await openConnection(port, options.host);
  try {
    const result = receiveAll(socket, options);
    const endAfterSend = options.endAfterSend ?? true;
    const send = options.send;
    if (send === undefined || typeof send === 'string' || Buffer.isBuffer(send)) {
      if (send !== undefined) socket.write(send);
      if (endAfterSend) socket.end();
    } else {
      send.pipe(socket, { end: endAfterSend });
    }
    return await result;
  } finally {
    socket.destroy();
  }
}

/** Reads from `socket` until the received text contains a newline, and returns the text before it. */
export function readLine(socket: Socket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (error: Error | undefined, line?: string): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      if (error === undefined) resolve(line as string);
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline >= 0) {
        socket.pause();
        finish(undefined, text.slice(0, newline));
      }
    };
    const onEnd = (): void => finish(new Error(`The connection ended before a full line (received ${JSON.stringify(text)})`));
    const onError = (error: Error): void => finish(error);
    const timer = setTimeout(() => finish(new Error(`No full line within ${timeoutMs} ms (received ${JSON.stringify(text)})`)), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
  });
}

/**
 * Resolves once `socket` has received at least `count` bytes, with the exact number
 * received. Rejects if the connection ends first or after `timeoutMs`.
 */
export function receiveAtLeast(socket: Socket, count: number, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const finish = (error: Error | undefined): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      if (error === undefined) resolve(bytes);
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes >= count) finish(undefined);
    };
    const onEnd = (): void => finish(new Error(`Connection ended after ${bytes} of ${count} bytes`));
    const onError = (error: Error): void => finish(error);
    const timer = setTimeout(() => finish(new Error(`Received only ${bytes} of ${count} bytes within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
  });
}
