// The state that both byte pumps keep, on sockets (pump.ts) and on TCP handles
// (handle-pump.ts): byte counts, the reason a connection ended, and the idle timer.
import type { CloseReason, Side } from './close-reason.js';
import { timeoutListFor, type TimeoutEntry, type TimeoutList } from '../timeout-list.js';
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

/** The interface of a running pump that the service listener uses, on sockets or on handles. */
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

/** The read buffers that the process's sockets reuse (see read-buffers.ts). */
export const readBuffers = new ReadBuffers();

/**
 * The counts, end reason and idle timer of one pumped connection. A subclass
 * moves the bytes and calls reportClosed() once both of its sockets are closed.
 */
export abstract class PumpBase implements ConnectionPump, TimeoutEntry {
  protected bytesUpstream = 0;
  protected bytesDownstream = 0;
  /** Time, from performance.now(), of the last read from either side or the last drain towards a peer. */
  protected lastActivity = 0;
  /** Bytes already added to counters by countBytes(). */
  private countedUpstream = 0;
  private countedDownstream = 0;
  /** First clean FIN seen, kept as the reason unless an error comes later. */
  private endReason: CloseReason | undefined;
  private endSide: Side = 'internal';
  /** First error or local abort. It outranks a clean end. */
  private failure: { reason: CloseReason; side: Side; error: Error | undefined } | undefined;
  /** Milliseconds without a byte read from either side before the connection is closed, or 0 for no limit. */
  private readonly idleMs: number;
  /** The list that keeps the idle timeout, or undefined without one. */
  private readonly idleTimeouts: TimeoutList | undefined;
  private readonly onClose: (result: PumpResult) => void;

  // The idle timeout's place in its list (see timeout-list.ts).
  timeoutAt = 0;
  previousTimeout: TimeoutEntry | undefined = undefined;
  nextTimeout: TimeoutEntry | undefined = undefined;
  timeoutList: TimeoutList | undefined = undefined;

  constructor(options: PumpOptions, onClose: (result: PumpResult) => void) {
    this.onClose = onClose;
    // Reads only store the time. The timeout checks it when it is due, and closes
    // the connection or waits for the rest of the idle time. socket.setTimeout()
    // would re-arm a Node.js timer on every read and write instead.
    this.idleMs = options.idleMs;
    if (this.idleMs > 0) {
      this.lastActivity = performance.now();
      this.idleTimeouts = timeoutListFor(this.idleMs);
      this.idleTimeouts.add(this, this.lastActivity + this.idleMs);
    }
  }

  abstract abort(reason: CloseReason): void;

  countBytes(counts: ByteCounts): void {
    counts.bytesUpstream += this.bytesUpstream - this.countedUpstream;
    counts.bytesDownstream += this.bytesDownstream - this.countedDownstream;
    this.countedUpstream = this.bytesUpstream;
    this.countedDownstream = this.bytesDownstream;
  }

  /** Runs when the idle timeout is due. Called only by the idle timeout's list. */
  onTimeout(now: number): void {
    const idleUntil = this.lastActivity + this.idleMs;
    if (idleUntil > now) {
      this.idleTimeouts?.add(this, idleUntil);
      return;
    }
    this.fail('idle', 'internal', undefined);
    this.closeIdle();
  }

  /** Closes both sides of an idle connection. It has no bytes in flight, so they get a normal FIN. */
  protected abstract closeIdle(): void;

  /** Records the first clean FIN, from `side`, as the reason the connection ended. */
  protected noteEnd(side: 'client' | 'backend'): void {
    if (this.endReason !== undefined) return;
    this.endReason = side === 'client' ? 'client_end' : 'backend_end';
    this.endSide = side;
  }

  /** Records the first failure. */
  protected fail(reason: CloseReason, side: Side, error: Error | undefined): void {
    if (this.failure === undefined) this.failure = { reason, side, error };
  }

  /** Removes the idle timeout and passes the result to `onClose`. Call once, when both sockets are closed. */
  protected reportClosed(): void {
    this.idleTimeouts?.remove(this);
    const failure = this.failure;
    this.onClose({
      reason: failure?.reason ?? this.endReason ?? 'other',
      side: failure?.side ?? this.endSide,
      error: failure?.error,
      bytesUpstream: this.bytesUpstream,
      bytesDownstream: this.bytesDownstream,
    });
  }
}
