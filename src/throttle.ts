// Runs an action soon after it is requested, but at most once per interval: the
// first request after a quiet spell runs at the end of the current event loop
// turn, and requests during the following interval are merged into one run at
// its end. Messages that carry a state (not events) use it to stay fresh at low
// rates and cheap at high ones.

export class Throttle {
  private readonly intervalMs: number;
  private readonly action: () => void;
  /** When the action last ran, from performance.now(); -Infinity before the first run. */
  private lastRun = Number.NEGATIVE_INFINITY;
  private scheduled = false;

  constructor(intervalMs: number, action: () => void) {
    this.intervalMs = intervalMs;
    this.action = action;
  }

  /** Asks for one run of the action; requests before it runs share that run. */
  request(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastRun + this.intervalMs - performance.now();
    if (wait <= 0) setImmediate(this.run);
    else setTimeout(this.run, wait);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    this.lastRun = performance.now();
    this.action();
  };
}
