// One connect attempt to a backend on a TCP handle (see stream-handles.ts),
// bounded by the connect timeout: the handle counterpart of backend-connect.ts.
import { lookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import type { BackendConfig } from '../config/types.js';
import { handleError, type ConnectRequest, type StreamHandles, type TcpHandle } from '../pump/stream-handles.js';
import { timeoutEntry, timeoutListFor } from '../timeout-list.js';
import { ConnectTimeoutError } from './backend-connect.js';

/**
 * Time for each address of a hostname before the next one is tried, as Node.js's
 * own connect does by default (net.getDefaultAutoSelectFamilyAttemptTimeout()).
 * The last address gets the rest of the connect timeout.
 */
const ATTEMPT_TIMEOUT_MS = 250;

export type HandleConnectCallback = (error: Error | undefined, handle: TcpHandle | undefined) => void;

/** A connect in progress. destroy() aborts it, and its callback then gets an error. */
export interface PendingConnect {
  destroy(): void;
}

/**
 * Opens a TCP handle to `backend` for a handle pump. Calls `callback` exactly
 * once: with the connected handle, or with the error. The handle is reading
 * already, into a guard that resets it: libuv calls no read callback before the
 * connect callback, and the callback must set its own read callback at once.
 * A hostname is resolved by the OS resolver at each attempt, and its addresses
 * are tried in the order the resolver returns them.
 */
export function connectBackendHandle(
  handles: StreamHandles,
  backend: BackendConfig,
  timeoutMs: number,
  callback: HandleConnectCallback,
): PendingConnect {
  const deadline = performance.now() + timeoutMs;
  let settled = false;
  let current: TcpHandle | undefined;
  let attemptTimer: NodeJS.Timeout | undefined;

  const settle = (error: Error | undefined, handle: TcpHandle | undefined): void => {
    if (settled) return;
    settled = true;
    connectTimeouts.remove(timeout);
    clearTimeout(attemptTimer);
    current = undefined;
    callback(error, handle);
  };
  const fail = (error: Error): void => {
    if (current !== undefined) current.close();
    settle(error, undefined);
  };
  const connectTimeouts = timeoutListFor(timeoutMs);
  const timeout = timeoutEntry(() => fail(new ConnectTimeoutError(backend.address, timeoutMs)));
  connectTimeouts.add(timeout, deadline);

  const attempt = (addresses: readonly LookupAddress[], index: number): void => {
    const target = addresses[index]!;
    const last = index === addresses.length - 1;
    const handle = handles.createTcpHandle();
    handle.setNoDelay(true);
    current = handle;
    const request = handles.createConnectRequest();
    request.address = target.address;
    request.port = backend.port;
    const moveOn = (error: Error): void => {
      if (last) settle(error, undefined);
      else attempt(addresses, index + 1);
    };
    const next = (error: Error): void => {
      if (settled || current !== handle) return;
      clearTimeout(attemptTimer);
      current = undefined;
      handle.close();
      moveOn(error);
    };
    request.oncomplete = function (this: ConnectRequest, status: number): void {
      if (settled || current !== handle) return;
      if (status < 0) {
        next(attemptError(status, 'connect', target.address, backend.port));
        return;
      }
      clearTimeout(attemptTimer);
      settle(undefined, handle);
    };
    let syscall = 'connect';
    let errno = target.family === 6
      ? handle.connect6(request, target.address, backend.port)
      : handle.connect(request, target.address, backend.port);
    // Reading starts with the connect, so a connect costs libuv two epoll_ctl calls
    // instead of three. Until the pump takes the handle, the guard resets the
    // connection on a read, which would otherwise make Node.js abort the worker.
    handle.onread = onReadBeforePump;
    if (errno === 0) {
      syscall = 'read';
      errno = handle.readStart();
    }
    if (errno !== 0) {
      // Closed now, so that a connect completing meanwhile is cancelled. Reported
      // later, so that the callback never runs before this function returns.
      const failure = attemptError(errno, syscall, target.address, backend.port);
      current = undefined;
      handle.close();
      setImmediate(() => {
        if (!settled) moveOn(failure);
      });
      return;
    }
    if (!last) {
      const remaining = deadline - performance.now();
      attemptTimer = setTimeout(next, Math.min(ATTEMPT_TIMEOUT_MS, remaining), new ConnectTimeoutError(backend.address, ATTEMPT_TIMEOUT_MS));
    }
  };

  const family = ipFamilyOf(backend);
  if (family !== 0) {
    attempt([{ address: backend.host, family }], 0);
  } else {
    lookup(backend.host, { all: true }, (error, addresses) => {
      if (settled) return;
      if (error !== null) settle(error, undefined);
      else if (addresses.length === 0) settle(new Error(`${backend.host} resolved to no address`), undefined);
      else attempt(addresses, 0);
    });
  }

  return {
    // A drain deadline during the attempt.
    destroy: () => fail(new Error(`connect to ${backend.address} aborted`)),
  };
}

/** IP versions of backend hosts, looked up once per backend config. */
const ipFamilies = new WeakMap<BackendConfig, number>();

/** Returns 4 or 6 when the backend's host is an IP address, else 0 (a hostname). */
function ipFamilyOf(backend: BackendConfig): number {
  let family = ipFamilies.get(backend);
  if (family === undefined) {
    family = isIP(backend.host);
    ipFamilies.set(backend, family);
  }
  return family;
}

/** Resets a handle that read before a pump took it (see connectBackendHandle). */
function onReadBeforePump(this: TcpHandle): undefined {
  if (this.reset() !== 0) this.close();
  return undefined;
}

/** Returns an Error like net.Socket's for a failed connect attempt, naming the address. */
function attemptError(errno: number, syscall: string, address: string, port: number): Error {
  const error = handleError(errno, syscall);
  error.message = `${syscall} ${error.code ?? ''} ${address}:${port}`;
  return Object.assign(error, { address, port });
}
