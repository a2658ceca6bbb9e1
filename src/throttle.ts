// Runs an action soon after it is requested, but not more often than the
// requests allow. The first request after a quiet spell runs at the end of the
// current event loop turn. A request within `intervalMs` of the last run waits
// for the interval to pass, and requests before a run share it. Messages that
// carry a state (not events) use it to stay fresh at low rates and cheap at
// high ones.

export class Throttle {
  private readonly action: () => void;
  /** When the action last ran, from performance.now(); -Infinity before the first run. */
  private lastRun = Number.NEGATIVE_INFINITY;
  /** When the scheduled run is due, or undefined when none is scheduled. */
  private dueAt: number | undefined;
  /** The shortest interval requested for the scheduled run. */
  private dueInterval = Number.POSITIVE_INFINITY;
  private timeout: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(action: () => void) {
    this.action = action;
  }

  /** Asks for a run of the action no later than `intervalMs` after the last one, or now if that has passed. */
  request(intervalMs: number): void {
    // A run scheduled for the same or a shorter interval already satisfies this
    // request. Callers request a run for every connection, so this skips the clock.
    if (this.dueAt !== undefined && intervalMs >= this.dueInterval) return;
    const now = performance.now();
    const due = Math.max(now, this.lastRun + intervalMs);
    if (this.dueAt !== undefined && this.dueAt <= due) return;
    clearTimeout(this.timeout);
    this.dueAt = due;
    this.dueInterval = intervalMs;
    if (due <= now) this.immediate ??= setImmediate(this.run);
    else this.timeout = setTimeout(this.run, due - now);
  }

  private readonly run = (): void => {
    clearTimeout(this.timeout);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timeout = undefined;
    this.immediate = undefined;
    this.dueAt = undefined;
    this.dueInterval = Number.POSITIVE_INFINITY;
    this.lastRun = performance.now();
    this.action();
  };
}
