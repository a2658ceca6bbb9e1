// The bidirectional byte pump between an accepted client socket and a connected
// backend socket: backpressure both ways, half-close passed on, resets passed on
// as resets, and byte counts per direction.
import type { Socket } from 'node:net';
import { reasonForError, type CloseReason } from './close-reason.js';
import { PumpBase, readBuffers, type PumpOptions, type PumpResult } from './pump-base.js';
import { countReadBytes } from './read-garbage.js';

/**
 * Connects two sockets that were created with `allowHalfOpen: true`. The client
 * must be paused (the server uses `pauseOnConnect`). The backend must be created
 * with `BACKEND_SOCKET_OPTIONS`, paused, and connected. The pump resumes both.
 * `onClose` runs once, after both sockets closed.
 */
export class Pump extends PumpBase {
  private readonly client: Socket;
  private readonly backend: Socket;
  private openSockets = 2;

  constructor(client: Socket, backend: Socket, options: PumpOptions, onClose: (result: PumpResult) => void) {
    super(options, onClose);
    this.client = client;
    this.backend = backend;

    // The listeners are shared module-level functions that find the pump through
    // the socket, so an open connection keeps no closures of its own.
    (client as PumpedSocket)[kPump] = this;
    (backend as PumpedSocket)[kPump] = this;
    client.on('data', onClientData);
    client.on('end', onClientEnd);
    client.on('error', onClientError);
    client.on('close', onSocketClose);
    client.on('drain', onClientDrain);

    backend.on('end', onBackendEnd);
    backend.on('error', onBackendError);
    backend.on('close', onSocketClose);
    backend.on('drain', onBackendDrain);

    // A client that sent its FIN before the pump existed (right after a PROXY
    // protocol header, say) has already emitted 'end', so it is passed on here.
    if (client.readableEnded) this.onClientEnd();
    client.resume();
    backend.resume();
  }

  abort(reason: CloseReason): void {
    this.fail(reason, 'internal', undefined);
    resetSocket(this.client);
    resetSocket(this.backend);
  }

  // The on<Side><Event> methods below are the bodies of the socket listeners. They
  // are public only so that the shared listener functions at the end of this file
  // can call them; nothing else should.

  // Backpressure: a write that returns false means the destination's buffer is
  // above its high-water mark, so reading from the source stops until 'drain'.

  onClientData(chunk: Buffer): void {
    this.lastActivity = performance.now();
    this.bytesUpstream += chunk.length;
    countReadBytes(chunk.length);
    if (!this.backend.write(chunk)) this.client.pause();
  }

  /** Writes bytes read from the backend (in a buffer from read-buffers.ts) to the client. Returns false to stop reading. */
  onBackendRead(nread: number, buffer: Uint8Array): boolean {
    this.lastActivity = performance.now();
    this.bytesDownstream += nread;
    const chunk = readBuffers.takeChunk(buffer, nread);
    let pinned = false;
    let flowing: boolean;
    if (chunk.buffer === buffer.buffer) {
      // An own buffer: a queued write pins it until Node calls back, after the
      // write finished or failed, or the socket was destroyed. Node never calls
      // back before write() returns.
      flowing = this.client.write(chunk, () => {
        if (pinned) readBuffers.pinnedWriteDone(chunk);
      });
    } else {
      flowing = this.client.write(chunk);
    }
    pinned = readBuffers.afterChunkWritten(buffer, nread, this.client.writableLength > 0);
    if (flowing) return true;
    this.backend.pause();
    return false;
  }

  // A drain means the queue towards a peer emptied, so the peer is reading: a slow
  // reader of a large response is not idle.

  onBackendDrain(): void {
    this.lastActivity = performance.now();
    this.client.resume();
  }

  onClientDrain(): void {
    this.lastActivity = performance.now();
    this.backend.resume();
  }

  // Half-close: a FIN from one side becomes end() on the other, which sends FIN
  // after the bytes already queued. Each socket closes itself once it has both
  // received and sent a FIN.

  // NOTE: a reset right behind a short read reaches this pump as an end of
  // stream (libuv reports a hang-up after a short read as one), so the other side
  // then gets a FIN. The handle pump reads once more to tell the two apart.

  onClientEnd(): void {
    this.noteEnd('client');
    finishWriting(this.backend);
  }

  onBackendEnd(): void {
    this.noteEnd('backend');
    finishWriting(this.client);
  }

  // An error on one side truncates the stream, so the other side gets a reset
  // (RST) rather than a FIN: a peer must never take a cut stream for a whole one.

  onClientError(error: Error): void {
    this.fail(reasonForError(error), 'client', error);
    resetSocket(this.backend);
  }

  onBackendError(error: Error): void {
    this.fail(reasonForError(error), 'backend', error);
    resetSocket(this.client);
  }

  onSocketClose(): void {
    this.openSockets--;
    if (this.openSockets === 0) this.reportClosed();
  }

  protected closeIdle(): void {
    this.client.destroy();
    this.backend.destroy();
  }
}

const kPump = Symbol('rsp.pump');
type PumpedSocket = Socket & { [kPump]?: Pump };

function onClientData(this: PumpedSocket, chunk: Buffer): void {
  this[kPump]?.onClientData(chunk);
}
function onBackendRead(this: PumpedSocket, nread: number, buffer: Uint8Array): boolean {
  const pump = this[kPump];
  if (pump !== undefined) return pump.onBackendRead(nread, buffer);
  // Not reached: a backend socket reads only once its pump has resumed it. The
  // bytes have nowhere to go, so the socket is closed rather than left reading.
  this.destroy();
  return false;
}
function onClientDrain(this: PumpedSocket): void {
  this[kPump]?.onClientDrain();
}
function onBackendDrain(this: PumpedSocket): void {
  this[kPump]?.onBackendDrain();
}
function onClientEnd(this: PumpedSocket): void {
  this[kPump]?.onClientEnd();
}
function onBackendEnd(this: PumpedSocket): void {
  this[kPump]?.onBackendEnd();
}
function onClientError(this: PumpedSocket, error: Error): void {
  this[kPump]?.onClientError(error);
}
function onBackendError(this: PumpedSocket, error: Error): void {
  this[kPump]?.onBackendError(error);
}
function onSocketClose(this: PumpedSocket): void {
  this[kPump]?.onSocketClose();
}

/**
 * Sends FIN on `socket` after the bytes it has queued. A socket whose peer has
 * sent its FIN already and that has nothing queued in Node is closed at once
 * instead: close() sends the FIN after the bytes in the kernel's buffer just as
 * shutdown() does, and saves the shutdown call and its extra event loop turn.
 */
function finishWriting(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.readableEnded && socket.writableLength === 0 && !socket.connecting) socket.destroy();
  else socket.end();
}

/** Closes a socket with RST (SO_LINGER 0) so its peer gets ECONNRESET, unless it is already closed. */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting) {
    socket.destroy();
    return;
  }
  socket.resetAndDestroy();
}

/** Socket options for a backend that a pump will connect; see read-buffers.ts. */
export const BACKEND_SOCKET_OPTIONS = {
  allowHalfOpen: true,
  noDelay: true,
  onread: { buffer: readBuffers.nextBuffer, callback: onBackendRead },
} as const;
