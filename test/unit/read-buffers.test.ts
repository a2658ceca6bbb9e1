// The rules that keep a reused read buffer away from bytes Node still has to
// write. Each step plays what Node.js does around a read of a backend socket:
// nextBuffer() when the socket is created, then for every read the pump's
// takeChunk() and afterChunkWritten(), then nextBuffer() again.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ReadBuffers } from '../../src/pump/read-buffers.js';

const SIZE = 1024;
const BULK = 4096;

/** Result of one played read: its chunk, whether its queued write pins an own buffer, and the next buffer. */
interface ReadResult {
  readonly chunk: Buffer;
  readonly pinned: boolean;
  readonly next: Buffer;
}

/** Plays one read of `nread` bytes of `value` into `buffer`. */
function read(buffers: ReadBuffers, buffer: Buffer, nread: number, queued: boolean, value = 7): ReadResult {
  buffer.fill(value, 0, nread);
  const chunk = buffers.takeChunk(buffer, nread);
  const pinned = buffers.afterChunkWritten(buffer, nread, queued);
  return { chunk, pinned, next: buffers.nextBuffer() };
}

function sharesMemory(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer;
}

describe('read buffers', () => {
  test('shared buffer bytes are copied', () => {
    const buffers = new ReadBuffers(SIZE, BULK);
    const landing = buffers.nextBuffer();
    const other = buffers.nextBuffer();
    assert.equal(other, landing, 'every new socket starts in the shared buffer');

    const { chunk, next } = read(buffers, landing, 100, false);
    assert.equal(chunk.length, 100);
    assert.ok(!sharesMemory(chunk, landing), 'the chunk must not point into the shared buffer');
    assert.equal(next, landing, 'a short read stays in the shared buffer');
  });

  test('full read gets own buffer', () => {
    const buffers = new ReadBuffers(SIZE, BULK);
    const landing = buffers.nextBuffer();

    const first = read(buffers, landing, SIZE, false);
    assert.notEqual(first.next, landing);
    assert.equal(first.next.length, BULK, 'a bulk transfer reads in larger pieces');
    assert.equal(buffers.nextBuffer(), landing, 'the own buffer goes to one socket only');

    const second = read(buffers, first.next, BULK, false);
    assert.ok(sharesMemory(second.chunk, first.next), 'bytes in an own buffer are not copied');
    assert.equal(second.next, first.next, 'a finished write lets the socket keep its buffer');
  });

  test('queued buffer never handed out', () => {
    const buffers = new ReadBuffers(SIZE, BULK);
    const landing = buffers.nextBuffer();
    const own = read(buffers, landing, SIZE, false).next;

    const queued = read(buffers, own, BULK, true);
    assert.equal(queued.next, landing, 'after a queued write the socket reads into the shared buffer');

    // Further bursts, by this socket or others, must get fresh buffers, not the lent one.
    for (let i = 0; i < 8; i++) {
      const next = read(buffers, landing, SIZE, false).next;
      assert.notEqual(next, own);
      read(buffers, next, 10, false);
    }
  });

  test('queued copies stay intact', () => {
    const buffers = new ReadBuffers(SIZE, BULK);
    const landing = buffers.nextBuffer();
    const queued: Buffer[] = [];
    for (let value = 1; value <= 50; value++) {
      // Each queued copy is followed by a copy whose write finished at once, which
      // must not land on it.
      landing.fill(value, 0, 10);
      queued.push(buffers.takeChunk(landing, 10));
      buffers.afterChunkWritten(landing, 10, true);
      landing.fill(255, 0, 20);
      buffers.takeChunk(landing, 20);
      buffers.afterChunkWritten(landing, 20, false);
    }
    queued.forEach((chunk, index) => assert.deepEqual([...chunk], Array<number>(10).fill(index + 1)));
  });

  test('queued copies share memory', () => {
    const buffers = new ReadBuffers(SIZE, BULK);
    const landing = buffers.nextBuffer();
    const queued: Buffer[] = [];
    // 150 copies of 10 bytes fill one outgoing buffer of 1,024 bytes and start a second.
    for (let i = 0; i < 150; i++) {
      queued.push(buffers.takeChunk(landing, 10));
      buffers.afterChunkWritten(landing, 10, true);
    }
    assert.equal(new Set(queued.map((chunk) => chunk.buffer)).size, 2);
  });

  test('finished copies reuse memory', () => {
    const buffers = new ReadBuffers(SIZE, BULK);
    const landing = buffers.nextBuffer();
    const first = buffers.takeChunk(landing, 100);
    buffers.afterChunkWritten(landing, 100, false);
    const second = buffers.takeChunk(landing, 200);
    buffers.afterChunkWritten(landing, 200, false);
    assert.ok(sharesMemory(first, second));
    assert.equal(second.byteOffset, first.byteOffset);
  });

  test('copies reuse their views', () => {
    const buffers = new ReadBuffers(SIZE, BULK);
    const landing = buffers.nextBuffer();
    const first = read(buffers, landing, 100, false, 1).chunk;
    const second = read(buffers, landing, 100, false, 2).chunk;
    assert.equal(second, first, 'a finished copy of the same length leaves its view for the next');
    assert.deepEqual([...second], Array<number>(100).fill(2));

    // Queued copies of that length fill the outgoing buffer, and the next one
    // starts a new buffer, where views of the old buffer must not be reused.
    const queued: Buffer[] = [];
    for (let value = 3; queued.length < 12; value++) queued.push(read(buffers, landing, 100, true, value).chunk);
    read(buffers, landing, 100, false, 99);
    queued.forEach((chunk, index) => assert.deepEqual([...chunk], Array<number>(100).fill(index + 3)));
  });

  test('pinned buffers end bursts', () => {
    const buffers = new ReadBuffers(SIZE, BULK, 2);
    const landing = buffers.nextBuffer();
    // Two sockets start bursts, and a slow destination queues a write of each.
    const first = read(buffers, landing, SIZE, false).next;
    const second = read(buffers, landing, SIZE, false).next;
    const pinned = [first, second].map((own) => {
      const queued = read(buffers, own, BULK, true);
      assert.equal(queued.pinned, true, 'a queued write pins its own buffer');
      assert.equal(queued.next, landing);
      return queued.chunk;
    });
    assert.equal(buffers.pinnedBytes, 2 * BULK);
    assert.equal(read(buffers, landing, SIZE, false).next, landing, 'at the limit a burst stays in the shared buffer');

    // A queued copy pins no own buffer.
    const copy = read(buffers, landing, 10, true).chunk;
    buffers.pinnedWriteDone(copy);
    assert.equal(buffers.pinnedBytes, 2 * BULK);

    buffers.pinnedWriteDone(pinned[0] as Buffer);
    assert.equal(buffers.pinnedBytes, BULK);
    const next = read(buffers, landing, SIZE, false).next;
    assert.equal(next.length, BULK, 'below the limit a burst gets an own buffer again');
    assert.ok(!pinned.some((chunk) => sharesMemory(chunk, next)), 'a pinned buffer is never handed out');
  });

  test('short read keeps a spare', () => {
    const buffers = new ReadBuffers(SIZE, BULK);
    const landing = buffers.nextBuffer();
    const own = read(buffers, landing, SIZE, false).next;

    const short = read(buffers, own, 10, false);
    assert.equal(short.next, landing, 'a short read ends the burst');
    assert.equal(read(buffers, landing, SIZE, false).next, own, 'the next burst reuses the spare');
  });
});
