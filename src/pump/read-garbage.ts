// Node.js allocates a new buffer for every socket read, and V8 frees those
// buffers only at a garbage collection. With few JavaScript allocations per byte,
// V8 waits until tens of MiB of such buffers are external memory before it
// collects (about 32 MiB, measured with a slow reader on Node.js 20). While bytes
// flow, a minor collection every COLLECT_INTERVAL_MS keeps that garbage to what
// arrives in one interval. Backend sockets, and on the handle data path client
// sockets too, reuse their read buffers (read-buffers.ts). Client reads on
// net.Socket still leave such garbage, and so do copies from the shared read
// buffer whose writes are queued.

/** Bytes read since the last collection that make the next one worthwhile. */
const COLLECT_AFTER_BYTES = 1024 * 1024;
const COLLECT_INTERVAL_MS = 50;

type CollectGarbage = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let collect: CollectGarbage | undefined;
let bytesSinceCollect = 0;
let timer: NodeJS.Timeout | undefined;

/** Node.js option that the primary passes to workers so that `gc()` exists there. */
export const EXPOSE_GC_OPTION = '--expose-gc';

/**
 * Enables the periodic collection in this process; call once, before traffic
 * flows. Without `--expose-gc` (a worker started some other way) it stays off.
 */
export function enableReadGarbageCollection(): void {
  collect = (globalThis as { gc?: CollectGarbage }).gc;
}

/** Counts bytes read from a socket; schedules a minor collection when enough arrived. */
export function countReadBytes(bytes: number): void {
  bytesSinceCollect += bytes;
  if (timer !== undefined || collect === undefined || bytesSinceCollect < COLLECT_AFTER_BYTES) return;
  timer = setTimeout(runCollection, COLLECT_INTERVAL_MS);
  timer.unref();
}

function runCollection(): void {
  timer = undefined;
  bytesSinceCollect = 0;
  collect?.({ type: 'minor' });
}
