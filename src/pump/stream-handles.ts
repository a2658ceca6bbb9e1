// Node.js's own TCP handles, the layer below net.Socket, for the pump's data path.
//
// A net.Socket wraps a TCP handle in a Duplex stream with its own buffering,
// events and per-write callbacks. A proxy needs none of that: it moves bytes
// from one handle to the other. Under a new connection per request, a worker
// that drives the handles itself spends about half the CPU time per connection
// that the two sockets cost (see docs/benchmarks.md).
//
// The handles are internal to Node.js: process.binding() is deprecated (DEP0111)
// and the shape of what it returns may change between major versions. This module
// is the only place that touches them. It checks every member the pump uses and
// returns undefined when one is missing, and rsp then falls back to net.Socket.

import { getSystemErrorName } from 'node:util';

/** Address fields that getpeername() and getsockname() fill in. */
export interface HandleAddress {
  address?: string;
  port?: number;
  family?: string;
}

/** A request object for one write. Node.js calls `oncomplete` when an asynchronous write finishes. */
export interface WriteRequest {
  handle: TcpHandle;
  oncomplete: (this: WriteRequest, status: number) => void;
  /** Keeps the written bytes alive until the write finishes. */
  buffer: Uint8Array | null;
}

export interface ShutdownRequest {
  handle: TcpHandle;
  oncomplete: (this: ShutdownRequest, status: number) => void;
}

export interface ConnectRequest {
  oncomplete: (this: ConnectRequest, status: number) => void;
  address: string;
  port: number;
}

/**
 * One TCP socket. Methods return 0 or a negative libuv error number, as the
 * libuv functions behind them do.
 */
export interface TcpHandle {
  /**
   * Called with each read. The byte count, or a negative error number (UV_EOF
   * for the peer's FIN), is in the shared state. A handle that reads into its own
   * buffer (useUserBuffer) gets no argument, and a Uint8Array it returns becomes
   * the buffer of the next read.
   */
  onread: ((this: TcpHandle, arrayBuffer?: ArrayBuffer) => Uint8Array | undefined) | null;
  /** Bytes queued in libuv that the kernel has not taken yet. */
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  writeBuffer(request: WriteRequest, data: Uint8Array): number;
  /** Returns 1 when the shutdown finished at once. */
  shutdown(request: ShutdownRequest): number;
  /**
   * Closes the socket at once. `callback` runs on a later turn of the event loop,
   * when libuv has released the handle.
   */
  close(callback?: () => void): void;
  /** Closes the socket with RST (SO_LINGER 0). */
  reset(callback?: () => void): number;
  setNoDelay(enable: boolean): number;
  getpeername(out: HandleAddress): number;
  getsockname(out: HandleAddress): number;
  connect(request: ConnectRequest, address: string, port: number): number;
  connect6(request: ConnectRequest, address: string, port: number): number;
  useUserBuffer(buffer: Uint8Array): void;
}

/** The parts of Node.js's bindings that the pump uses. */
export interface StreamHandles {
  createTcpHandle(): TcpHandle;
  /** Returns a new write request, or the one given back last. */
  createWriteRequest(): WriteRequest;
  /**
   * Gives back a request whose write finished at once, so the next write reuses
   * it. Node.js creates its native write state only for bytes that stay queued,
   * so the request of a queued or failed write must not be given back.
   */
  reuseWriteRequest(request: WriteRequest): void;
  createShutdownRequest(): ShutdownRequest;
  createConnectRequest(): ConnectRequest;
  /** Byte count or negative error number of the read being delivered. */
  readResult(): number;
  /** Whether the last writeBuffer() left bytes queued, so that `oncomplete` follows. */
  lastWriteWasAsync(): boolean;
  /** libuv's error number for the peer's FIN. */
  readonly eof: number;
}

type Constructor<T> = new (...args: number[]) => T;

interface TcpBinding {
  TCP?: Constructor<TcpHandle>;
  TCPConnectWrap?: Constructor<ConnectRequest>;
  constants?: { SOCKET?: number };
}

interface StreamBinding {
  WriteWrap?: Constructor<WriteRequest>;
  ShutdownWrap?: Constructor<ShutdownRequest>;
  streamBaseState?: Int32Array;
  kReadBytesOrError?: number;
  kLastWriteWasAsync?: number;
}

type Binding = (name: string) => unknown;

/** Methods of a TCP handle that the pump calls. */
const HANDLE_METHODS = [
  'readStart', 'readStop', 'writeBuffer', 'shutdown', 'close', 'reset', 'setNoDelay',
  'getpeername', 'getsockname', 'connect', 'connect6', 'useUserBuffer',
] as const;

/** Returns Node.js's TCP handles, or undefined when this Node.js lacks one of the parts the pump uses. */
export function loadStreamHandles(): StreamHandles | undefined {
  const binding = (process as unknown as { binding?: Binding }).binding;
  if (typeof binding !== 'function') return undefined;
  let tcp: TcpBinding;
  let stream: StreamBinding;
  let eof: unknown;
  try {
    tcp = binding.call(process, 'tcp_wrap') as TcpBinding;
    stream = binding.call(process, 'stream_wrap') as StreamBinding;
    eof = (binding.call(process, 'uv') as { UV_EOF?: unknown }).UV_EOF;
  } catch {
    return undefined;
  }
  const { TCP, TCPConnectWrap, constants } = tcp;
  const { WriteWrap, ShutdownWrap, streamBaseState: state, kReadBytesOrError, kLastWriteWasAsync } = stream;
  if (
    typeof TCP !== 'function' || typeof TCPConnectWrap !== 'function' || typeof constants?.SOCKET !== 'number' ||
    typeof WriteWrap !== 'function' || typeof ShutdownWrap !== 'function' || !(state instanceof Int32Array) ||
    typeof kReadBytesOrError !== 'number' || typeof kLastWriteWasAsync !== 'number' || typeof eof !== 'number'
  ) {
    return undefined;
  }
  const socketType = constants.SOCKET;
  let spareWriteRequest: WriteRequest | undefined;
  const prototype = TCP.prototype as unknown as Record<string, unknown>;
  if (HANDLE_METHODS.some((method) => typeof prototype[method] !== 'function')) return undefined;
  if (!('writeQueueSize' in prototype)) return undefined;

  return {
    createTcpHandle: () => new TCP(socketType),
    createWriteRequest: () => {
      const request = spareWriteRequest ?? new WriteWrap();
      spareWriteRequest = undefined;
      return request;
    },
    reuseWriteRequest: (request) => {
      spareWriteRequest = request;
    },
    createShutdownRequest: () => new ShutdownWrap(),
    createConnectRequest: () => new TCPConnectWrap(),
    readResult: () => state[kReadBytesOrError]!,
    lastWriteWasAsync: () => state[kLastWriteWasAsync] !== 0,
    eof,
  };
}

const peerAddress: HandleAddress = {};

/**
 * Tells whether a TCP handle no longer has a peer: getpeername() fails once the
 * connection is closed, after a reset, or after both sides sent their FIN.
 */
export function peerGone(handle: TcpHandle): boolean {
  return handle.getpeername(peerAddress) !== 0;
}

/** Returns an Error like those of net.Socket for a libuv error number. */
export function handleError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  const error: NodeJS.ErrnoException = new Error(`${syscall} ${code}`);
  error.errno = errno;
  error.code = code;
  error.syscall = syscall;
  return error;
}
