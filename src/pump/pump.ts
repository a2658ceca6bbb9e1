// The bidirectional byte pump between an accepted client socket and a connected
// backend socket: backpressure both ways, half-close passed on, resets passed on
// as resets, and byte counts per direction.
import type { Socket } from 'node:net';
import { reasonForError, type CloseReason, type Side } from './close-reason.js';
import { countReadBytes } from './read-garbage.js';
import { ReadBuffers } from './read-buffers.js';

export interface PumpResult {
  readonly reason: CloseReason;
  readonly side: Side;
  /** The first socket error, when the connection ended with one. */
  readonly error: Error | undefined;
  /** Bytes read from the client and passed to the backend. */
  readonly bytesUpstream: number;
  /** Bytes read from the backend and passed to the client. */
  readonly bytesDownstream: number;
}

/** Byte counters per direction that a pump adds to. */
export interface ByteCounts {
  bytesUpstream: number;
  bytesDownstream: number;
}

/** What the service listener needs from a running pump, on sockets or on handles. */
export interface ConnectionPump {
  /**
   * Resets both sides at once and records `reason`, for drain deadlines: the
   * stream is cut, so neither peer must see a clean FIN. Idempotent.
   */
  abort(reason: CloseReason): void;
  /**
   * Adds the bytes moved each way since the previous call to `counts`, so a
   * long-lived connection shows up in byte counters before it closes.
   */
  countBytes(counts: ByteCounts): void;
}

export interface PumpOptions {
  /** Close both sides after this long without a byte in either direction; 0 disables. */
  readonly idleMs: number;
}

/**
 * Connects two sockets that were created with `allowHalfOpen: true`. The client
 * must be paused (the server uses `pauseOnConnect`). The backend must be created
 * with `BACKEND_SOCKET_OPTIONS`, paused, and connected. The pump resumes both.
 * `onClose` runs once, after both sockets closed.
 */
export class Pump implements ConnectionPump {
  private readonly client: Socket;
  private readonly backend: Socket;
  private readonly onClose: (result: PumpResult) => void;

  private bytesUpstream = 0;
  private bytesDownstream = 0;
  /** Bytes already added to counters by countBytes(). */
  private countedUpstream = 0;
  private countedDownstream = 0;
  /** First clean FIN seen, kept as the reason unless an error comes later. */
  private endReason: CloseReason | undefined;
  private endSide: Side = 'internal';
  /** First error or local abort; it outranks a clean end. */
  private failure: { reason: CloseReason; side: Side; error: Error | undefined } | undefined;
  private openSockets = 2;
  /** Milliseconds without a byte read from either side before the connection is closed, or 0 for no limit. */
  private readonly idleMs: number;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Time, from performance.now(), of the last read from either side or the last drain towards a peer. */
  private lastActivity = 0;

  constructor(client: Socket, backend: Socket, options: PumpOptions, onClose: (result: PumpResult) => void) {
    this.client = client;
    this.backend = backend;
    this.onClose = onClose;

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

    // Reads only store the time. The timer checks it when it fires, and closes the
    // connection or waits for the rest of the idle time. socket.setTimeout() would
    // re-arm a Node.js timer on every read and write instead.
    this.idleMs = options.idleMs;
    if (this.idleMs > 0) {
      this.lastActivity = performance.now();
      this.idleTimer = setTimeout(onIdleTimer, this.idleMs, this);
    }

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

  countBytes(counts: ByteCounts): void {
    counts.bytesUpstream += this.bytesUpstream - this.countedUpstream;
    counts.bytesDownstream += this.bytesDownstream - this.countedDownstream;
    this.countedUpstream = this.bytesUpstream;
    this.countedDownstream = this.bytesDownstream;
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
    const flowing = this.client.write(readBuffers.takeChunk(buffer, nread));
    readBuffers.afterChunkWritten(buffer, nread, this.client.writableLength > 0);
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

  onClientEnd(): void {
    if (this.endReason === undefined) {
      this.endReason = 'client_end';
      this.endSide = 'client';
    }
    finishWriting(this.backend);
  }

  onBackendEnd(): void {
    if (this.endReason === undefined) {
      this.endReason = 'backend_end';
      this.endSide = 'backend';
    }
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

  // An idle connection has no bytes in flight, so it is closed with a normal FIN.
  onIdleTimer(): void {
    const remaining = this.lastActivity + this.idleMs - performance.now();
    if (remaining > 0) {
      this.idleTimer = setTimeout(onIdleTimer, remaining, this);
      return;
    }
    this.idleTimer = undefined;
    this.fail('idle', 'internal', undefined);
    this.client.destroy();
    this.backend.destroy();
  }

  onSocketClose(): void {
    this.openSockets--;
    if (this.openSockets > 0) return;

    clearTimeout(this.idleTimer);
    const failure = this.failure;
    this.onClose({
      reason: failure?.reason ?? this.endReason ?? 'other',
      side: failure?.side ?? this.endSide,
      error: failure?.error,
      bytesUpstream: this.bytesUpstream,
      bytesDownstream: this.bytesDownstream,
    });
  }

  private fail(reason: CloseReason, side: Side, error: Error | undefined): void {
    if (this.failure === undefined) this.failure = { reason, side, error };
  }
}

/** One set of read buffers serves every backend socket of the process. */
export const readBuffers = new ReadBuffers();

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
function onIdleTimer(pump: Pump): void {
  pump.onIdleTimer();
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
