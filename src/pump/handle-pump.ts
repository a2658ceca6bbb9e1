// The pump on Node.js's TCP handles (stream-handles.ts): the same contract as
// pump.ts, without net.Socket's stream layer. Reads are written to the other
// handle at once. A write that leaves bytes queued in libuv can stop the reading
// side until its queue is written out, and a FIN is passed on as a shutdown.
import { reasonForError, type CloseReason } from './close-reason.js';
import { PumpBase, readBuffers, type PumpOptions, type PumpResult } from './pump-base.js';
import { handleError, peerGone, type ShutdownRequest, type StreamHandles, type TcpHandle, type WriteRequest } from './stream-handles.js';

/**
 * Bytes queued towards one side at which the other side stops reading: the
 * default high-water mark of a net.Socket in Node.js 20. Reading resumes once
 * every queued write has finished.
 */
const HIGH_WATER_BYTES = 16 * 1024;

/** One of the two sockets of a pumped connection. */
class Leg {
  readonly handle: TcpHandle;
  readonly side: 'client' | 'backend';
  readonly pump: HandlePump;
  peer!: Leg;
  /** The peer sent its FIN. */
  eof = false;
  /** rsp has asked for a FIN towards this socket, or closed it. */
  finishing = false;
  /** The FIN towards this socket has been sent. */
  finished = false;
  closed = false;
  /** Reading stopped because the other socket's write queue is full. */
  blocked = false;
  /** Reading once more after an end of stream from a peer that is gone (see onReadEnd). */
  confirmingEnd = false;
  /** Asynchronous writes towards this socket that have not finished. */
  pendingWrites = 0;
  /** The buffer the socket reads into next. */
  readBuffer: Uint8Array | undefined;

  constructor(handle: TcpHandle, side: 'client' | 'backend', pump: HandlePump) {
    this.handle = handle;
    this.side = side;
    this.pump = pump;
  }
}

export interface HandlePumpOptions extends PumpOptions {
  /** Bytes written to the backend before any from the client, such as a PROXY protocol header. */
  readonly preface?: Uint8Array | undefined;
}

/**
 * The leg that brought the last bytes read in this process. libuv turns a hang-up into an end of
 * stream only right after a short read of the same socket, so an end on any other leg is a FIN.
 * NOTE: this follows libuv 1.46 (Node.js 20), and a later libuv may report hang-ups otherwise.
 */
let lastDataLeg: Leg | undefined;

const kLeg = Symbol('rsp.leg');
type LeggedHandle = TcpHandle & { [kLeg]?: Leg };

/**
 * Pumps bytes between two connected TCP handles. The client handle must not be
 * reading yet. The backend handle must be reading already, as
 * connectBackendHandle() leaves it, and must not have read anything.
 * `onClose` runs once, when the pump has closed both handles.
 */
export class HandlePump extends PumpBase {
  private readonly handles: StreamHandles;
  private readonly client: Leg;
  private readonly backend: Leg;

  constructor(handles: StreamHandles, client: TcpHandle, backend: TcpHandle, options: HandlePumpOptions, onClose: (result: PumpResult) => void) {
    super(options, onClose);
    this.handles = handles;
    this.client = new Leg(client, 'client', this);
    this.backend = new Leg(backend, 'backend', this);
    this.client.peer = this.backend;
    this.backend.peer = this.client;
    (client as LeggedHandle)[kLeg] = this.client;
    (backend as LeggedHandle)[kLeg] = this.backend;

    // Both sockets read into the worker's reused read buffers, as backend sockets
    // do on the socket pump, instead of into a new 64 KiB buffer per read.
    this.readInto(this.client);
    this.readInto(this.backend);
    if (options.preface !== undefined) this.forward(this.client, options.preface);
    this.startReading(this.client);
  }

  abort(reason: CloseReason): void {
    this.fail(reason, 'internal', undefined);
    this.close(this.client, true);
    this.close(this.backend, true);
  }

  // The methods below are called by the shared handle callbacks at the end of
  // this file. Nothing else should call them.

  onRead(leg: Leg): Uint8Array | undefined {
    const nread = this.handles.readResult();
    const buffer = leg.readBuffer;
    if (nread <= 0 || buffer === undefined) {
      this.onReadEnd(leg, nread);
      return undefined;
    }
    lastDataLeg = leg;
    if (leg === this.client) this.bytesUpstream += nread;
    else this.bytesDownstream += nread;
    const queued = this.forward(leg, readBuffers.takeChunk(buffer, nread));
    readBuffers.afterChunkWritten(buffer, nread, queued);
    const next = readBuffers.nextBuffer();
    // Returning nothing keeps Node.js reading into the same buffer and spares it
    // a lookup of the buffer's memory (CustomBufferJSListener::OnStreamRead).
    if (next === buffer) return undefined;
    leg.readBuffer = next;
    return next;
  }

  onWriteComplete(leg: Leg, request: WriteRequest, status: number): void {
    leg.pendingWrites--;
    // Node.js calls this for a write cancelled by close() too, so a pinned read
    // buffer is always counted as free again.
    if (request.buffer !== null) readBuffers.pinnedWriteDone(request.buffer);
    request.buffer = null;
    if (leg.closed) return;
    if (status < 0) {
      this.failLeg(leg, status, 'write');
      return;
    }
    // A finished write means the peer is reading: a slow reader of a large
    // response is not idle.
    this.lastActivity = performance.now();
    const source = leg.peer;
    if (leg.pendingWrites === 0 && source.blocked) {
      source.blocked = false;
      this.startReading(source);
    }
  }

  onShutdownComplete(leg: Leg): void {
    leg.finished = true;
    // A socket that has both sent and received a FIN is done.
    if (leg.eof) this.close(leg, false);
  }

  protected closeIdle(): void {
    this.close(this.client, false);
    this.close(this.backend, false);
  }

  /**
   * Writes bytes read from `from` to its peer. Returns true when libuv keeps
   * the bytes queued, so their buffer must not be reused yet.
   */
  private forward(from: Leg, chunk: Uint8Array): boolean {
    this.lastActivity = performance.now();
    const to = from.peer;
    // Bytes for a socket that is closed or finishing are dropped: a reset or an
    // idle close is already on its way to the reader.
    if (to.closed || to.finishing) return false;
    const request = this.handles.createWriteRequest();
    request.handle = to.handle;
    request.oncomplete = onWriteComplete;
    request.buffer = null;
    const error = to.handle.writeBuffer(request, chunk);
    if (error !== 0) {
      this.failLeg(to, error, 'write');
      return false;
    }
    if (!this.handles.lastWriteWasAsync()) {
      this.handles.reuseWriteRequest(request);
      return false;
    }
    request.buffer = chunk;
    to.pendingWrites++;
    if (to.handle.writeQueueSize >= HIGH_WATER_BYTES && !from.blocked) {
      from.blocked = true;
      from.handle.readStop();
    }
    return true;
  }

  /** Handles a read that brought no bytes: the peer's FIN or an error. */
  private onReadEnd(leg: Leg, nread: number): void {
    if (nread === 0) return;
    if (nread !== this.handles.eof) {
      this.failLeg(leg, nread, 'read');
      return;
    }
    // libuv reports a hang-up right after a short read as an end of stream, and a
    // reset hangs a socket up too. So a socket without a peer reads once more:
    // read() returns 0 after a FIN, also on a socket that rsp has shut down, and
    // ECONNRESET after a reset alone. An end that does not follow this socket's
    // bytes needs no check (see lastDataLeg).
    if (lastDataLeg === leg && !leg.confirmingEnd && peerGone(leg.handle)) {
      leg.confirmingEnd = true;
      this.startReading(leg);
      return;
    }
    // Half-close: a FIN from one side becomes a FIN towards the other, sent after
    // the bytes already queued for it.
    leg.eof = true;
    this.noteEnd(leg.side);
    // Both directions of this socket are done once its FIN is sent. A FIN still
    // waiting in libuv behind no queued bytes is sent by close() as well, which
    // saves the shutdown call.
    if (leg.finished || (leg.finishing && leg.pendingWrites === 0)) this.close(leg, false);
    this.finish(leg.peer);
  }

  /**
   * Sends FIN towards `leg` after its queued bytes. A socket whose peer has sent
   * its FIN already and that has no write queued is closed at once instead.
   * close() sends the FIN after the bytes in the kernel's buffer, as shutdown()
   * does, without the shutdown call and its callback.
   */
  private finish(leg: Leg): void {
    if (leg.closed || leg.finishing) return;
    leg.finishing = true;
    if (leg.eof && leg.pendingWrites === 0) {
      this.close(leg, false);
      return;
    }
    const request = this.handles.createShutdownRequest();
    request.handle = leg.handle;
    request.oncomplete = onShutdownComplete;
    const result = leg.handle.shutdown(request);
    // 1 means done at once. Any error (the socket is no longer connected) leaves
    // nothing to send, as net.Socket treats it.
    if (result !== 0) this.onShutdownComplete(leg);
  }

  /**
   * An error on one side truncates the stream, so the other side gets a reset
   * (RST) rather than a FIN: a peer must never take a cut stream for a whole one.
   */
  private failLeg(leg: Leg, errno: number, syscall: string): void {
    const error = handleError(errno, syscall);
    this.fail(reasonForError(error), leg.side, error);
    this.close(leg, false);
    this.close(leg.peer, true);
  }

  private readInto(leg: Leg): void {
    const buffer = readBuffers.nextBuffer();
    leg.readBuffer = buffer;
    leg.handle.useUserBuffer(buffer);
    leg.handle.onread = onHandleRead;
  }

  private startReading(leg: Leg): void {
    if (leg.closed || leg.eof) return;
    const error = leg.handle.readStart();
    if (error !== 0) this.failLeg(leg, error, 'read');
  }

  /** Closes a handle once; with `reset`, its peer gets RST instead of FIN. */
  private close(leg: Leg, reset: boolean): void {
    if (leg.closed) return;
    leg.closed = true;
    leg.finishing = true;
    // Drops the reference, so that a closed connection's pump and read buffer can be collected.
    if (lastDataLeg === leg) lastDataLeg = undefined;
    // A reset fails on a handle that is shutting down, which is then closed
    // normally, after the FIN already on its way. libuv closes the file descriptor at once,
    // so the pump counts the handle as closed without waiting for a callback.
    if (!reset || leg.handle.reset() !== 0) leg.handle.close();
    if (leg.peer.closed) this.reportClosed();
  }
}

// Shared callbacks: Node.js calls them with the handle or the request as `this`,
// so an open connection keeps no closures of its own.

function onHandleRead(this: LeggedHandle): Uint8Array | undefined {
  const leg = this[kLeg];
  return leg?.pump.onRead(leg);
}
function onWriteComplete(this: WriteRequest, status: number): void {
  const leg = (this.handle as LeggedHandle)[kLeg];
  leg?.pump.onWriteComplete(leg, this, status);
}
function onShutdownComplete(this: ShutdownRequest): void {
  const leg = (this.handle as LeggedHandle)[kLeg];
  if (leg !== undefined && !leg.closed) leg.pump.onShutdownComplete(leg);
}
