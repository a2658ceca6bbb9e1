// Accepted client connections as bare TCP handles, for the handle data path
// (see stream-handles.ts). A service takes its clients as handles unless it reads
// PROXY protocol headers, which its net.Socket path does.
import type { Server } from 'node:net';
import type { ServiceConfig } from '../config/types.js';
import { normalizeAddress, type ProxiedAddresses } from '../proxy-protocol/header.js';
import { loadStreamHandles, type HandleAddress, type StreamHandles, type TcpHandle } from '../pump/stream-handles.js';

/**
 * Node.js's TCP handles, or undefined when rsp moves bytes through net.Socket:
 * when this Node.js lacks a part of them, or when RSP_DATA_PATH is `sockets`.
 */
const DATA_PATH_HANDLES: StreamHandles | undefined =
  process.env.RSP_DATA_PATH === 'sockets' ? undefined : loadStreamHandles();

/**
 * Returns the TCP handles that `service` moves bytes on, or undefined when it
 * uses net.Socket: without the handles, or when the service reads PROXY
 * protocol headers, which only its net.Socket path does.
 */
export function streamHandlesFor(service: ServiceConfig): StreamHandles | undefined {
  return service.acceptProxyFrom === null ? DATA_PATH_HANDLES : undefined;
}

/** Returns how `service` moves bytes, for the start line: `handles` or `sockets`. */
export function dataPathOf(service: ServiceConfig): 'handles' | 'sockets' {
  return streamHandlesFor(service) === undefined ? 'sockets' : 'handles';
}

/** A client connection accepted as a TCP handle, until a pump takes the handle over. */
export class HandleClient {
  readonly handles: StreamHandles;
  readonly handle: TcpHandle;
  /** Whether rsp closed the handle before a pump took it. */
  destroyed = false;

  constructor(handles: StreamHandles, handle: TcpHandle) {
    this.handles = handles;
    this.handle = handle;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.handle.close();
  }

  /** Returns the client's address and the local address it connected to, for a PROXY protocol header. */
  addresses(): ProxiedAddresses {
    const peer: HandleAddress = {};
    const local: HandleAddress = {};
    this.handle.getpeername(peer);
    this.handle.getsockname(local);
    return {
      sourceAddress: normalizeAddress(peer.address ?? ''),
      sourcePort: peer.port ?? 0,
      destinationAddress: normalizeAddress(local.address ?? ''),
      destinationPort: local.port ?? 0,
    };
  }
}

/** Receives each accepted client handle, or the error of a failed accept. */
export type HandleAcceptor = (error: number, handle: TcpHandle | undefined) => void;

interface ListenHandle {
  onconnection?: unknown;
}

const kSocketAcceptor = Symbol('rsp.socketAcceptor');

/**
 * Makes a listening server hand its accepted connections to `acceptor` as TCP
 * handles, or, with undefined, to its net.Socket path again. The listen handle
 * exists once the server listens, in either cluster scheduling mode.
 */
export function setHandleAcceptor(server: Server, acceptor: HandleAcceptor | undefined): void {
  const handle = (server as unknown as { _handle?: (ListenHandle & { [kSocketAcceptor]?: unknown }) | null })._handle;
  if (handle === undefined || handle === null) return;
  if (!(kSocketAcceptor in handle)) handle[kSocketAcceptor] = handle.onconnection;
  handle.onconnection = acceptor ?? handle[kSocketAcceptor];
}
