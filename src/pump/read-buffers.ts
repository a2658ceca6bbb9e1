// Read buffers that sockets reuse. By default Node.js allocates a new 64 KiB
// buffer for every socket read, and V8 frees it only at its next collection. A
// backend that sends faster than the client reads thus leaves megabytes of
// garbage before backpressure stops the reads. Backend sockets read into buffers
// that rsp reuses instead (the `onread` option of net.connect). On the handle
// data path (handle-pump.ts), client sockets read into them as well.
//
// - The landing buffer is shared by every socket that reads into it. Idle
//   sockets and sockets that read little land there, so they hold no memory of
//   their own. Its bytes are always copied before they are written anywhere,
//   because the next read of any socket overwrites them. They are copied into the
//   outgoing buffer. A copy whose write finished at once leaves its place free
//   for the next copy. A copy whose write left bytes queued keeps its place, and
//   later copies go after it, then to a new outgoing buffer once this one is full.
//   So queued copies take only their own bytes, packed together.
// - A socket whose read filled a buffer (a bulk transfer) gets a 256 KiB buffer
//   of its own for the next read. Its bytes are written without a copy. If the write
//   leaves bytes queued in Node, the queue still points into that buffer, so it
//   is given up (it becomes garbage once written) and the socket lands in the
//   shared buffer again.
//
// So no socket reads into a buffer that a queued write still refers to, and no
// copy overwrites one. An own buffer is reused or kept as a spare, and a place in
// the outgoing buffer is reused, only after a write that Node finished at once.
//
// A peer that stops reading in the middle of a bulk transfer leaves a queued
// write that pins a whole own buffer. The pumps report when such a write
// finishes or is cancelled (pinnedWriteDone()). While MAX_PINNED_BUFFERS own
// buffers are pinned, full reads stay in the landing buffer. So past that
// number, each stalled peer pins at most a 64 KiB copy.

import { countReadBytes } from './read-garbage.js';

/** Size of the shared and the outgoing buffer, which is libuv's read size for TCP sockets. */
const READ_BUFFER_BYTES = 64 * 1024;
/**
 * Size of a bulk transfer's own buffer. With 256 KiB instead of 64 KiB, one
 * 1 GiB transfer through 2 workers went from 1,037–1,137 to 1,385–1,549 MB/s
 * (`npm run bench -- --scenarios C`).
 */
const BULK_READ_BUFFER_BYTES = 256 * 1024;
/** Own buffers kept for the next bulk transfer, 1 MiB in all. Further ones are left to the collector. */
const MAX_SPARE_BUFFERS = 4;
/** Own buffers that queued writes may pin before full reads stay in the landing buffer: 4 MiB. */
const MAX_PINNED_BUFFERS = 16;

/** Views of the first bytes of the landing and the outgoing buffer, of one length. */
interface StartViews {
  readonly landing: Buffer;
  readonly outgoing: Buffer;
}

/** Lengths whose start views are kept. Past this many, the cache starts again empty. */
const MAX_START_VIEW_LENGTHS = 256;

/** The reused read buffers of a process. */
export class ReadBuffers {
  private readonly size: number;
  private readonly bulkSize: number;
  private readonly maxPinned: number;
  /** Own buffers that queued writes pin. */
  private pinned = 0;
  private readonly landing: Buffer;
  /** The buffer that copies of the landing buffer's bytes go to before they are written. */
  private outgoing: Buffer;
  /** Bytes at the start of `outgoing` that queued writes still refer to. */
  private outgoingHeld = 0;
  private readonly spares: Buffer[] = [];
  /** Start views by length, for the current outgoing buffer. */
  private readonly startViews = new Map<number, StartViews>();
  /**
   * The buffer for the socket whose read callback ran last. Node.js calls
   * nextBuffer() right after each callback, and once when it creates the socket.
   */
  private next: Buffer;

  constructor(size = READ_BUFFER_BYTES, bulkSize = BULK_READ_BUFFER_BYTES, maxPinned = MAX_PINNED_BUFFERS) {
    // pinnedWriteDone() distinguishes own buffers from outgoing ones by their size.
    if (bulkSize === size) throw new RangeError('own buffers must differ in size from the shared one');
    this.size = size;
    this.bulkSize = bulkSize;
    this.maxPinned = maxPinned;
    this.landing = Buffer.allocUnsafeSlow(size);
    this.outgoing = Buffer.allocUnsafeSlow(size);
    this.next = this.landing;
  }

  /** The `buffer` function of the `onread` socket option. */
  readonly nextBuffer = (): Buffer => {
    const buffer = this.next;
    this.next = this.landing;
    return buffer;
  };

  /**
   * Returns the bytes of a read: a copy in the outgoing buffer when they are in
   * the landing buffer, else a view. Call afterChunkWritten() for the same read
   * before the next call.
   */
  takeChunk(buffer: Uint8Array, nread: number): Buffer {
    if (buffer === this.landing) {
      if (this.outgoing.length - this.outgoingHeld < nread) {
        this.outgoing = Buffer.allocUnsafeSlow(this.size);
        this.outgoingHeld = 0;
        this.startViews.clear();
      }
      const start = this.outgoingHeld;
      if (start === 0) {
        // The usual case: no queued copy. A copy with new views would leave two
        // objects of garbage per read, so views of the same length are reused.
        const views = this.startViews.get(nread) ?? this.addStartViews(nread);
        views.outgoing.set(views.landing);
        return views.outgoing;
      }
      this.landing.copy(this.outgoing, start, 0, nread);
      return this.outgoing.subarray(start, start + nread);
    }
    return (buffer as Buffer).subarray(0, nread);
  }

  private addStartViews(length: number): StartViews {
    if (this.startViews.size >= MAX_START_VIEW_LENGTHS) this.startViews.clear();
    const views = { landing: this.landing.subarray(0, length), outgoing: this.outgoing.subarray(0, length) };
    this.startViews.set(length, views);
    return views;
  }

  /**
   * Chooses the buffer for the socket's next read, after the chunk of this read
   * was handed to the destination. `queued` is true when Node has unwritten
   * bytes queued for the destination, which may point into `buffer`. Returns
   * true when the queued write pins an own buffer. The pump must then call
   * pinnedWriteDone() once that write has finished or was cancelled.
   */
  afterChunkWritten(buffer: Uint8Array, nread: number, queued: boolean): boolean {
    const own = buffer === this.landing ? undefined : (buffer as Buffer);
    if (queued) {
      // The destination is slower than the source: reads go back to the landing
      // buffer, and the bytes that were written stay with the queued write until it
      // is done. A copy keeps its place in the outgoing buffer.
      countReadBytes(own?.length ?? nread);
      if (own === undefined) {
        this.outgoingHeld += nread;
        return false;
      }
      this.pinned++;
      return true;
    }
    // NOTE: the limit is checked only here, so sockets that already read into an
    // own buffer can still pin it, and the count can pass the limit for a moment.
    if (nread === buffer.length && this.pinned < this.maxPinned) {
      this.next = own ?? this.spares.pop() ?? Buffer.allocUnsafeSlow(this.bulkSize);
      return false;
    }
    // A short read ends the burst, and so do too many pinned buffers. The socket
    // then waits in the landing buffer.
    if (own !== undefined && this.spares.length < MAX_SPARE_BUFFERS) this.spares.push(own);
    return false;
  }

  /**
   * Counts a queued write as done, finished or cancelled. `chunk` is the bytes
   * it wrote. Writes of copies are ignored, so the handle pump can call this for
   * every queued write.
   */
  pinnedWriteDone(chunk: Uint8Array): void {
    if (chunk.buffer.byteLength === this.bulkSize) this.pinned--;
  }

  /** Bytes of the own buffers that queued writes pin now. */
  get pinnedBytes(): number {
    return this.pinned * this.bulkSize;
  }
}
