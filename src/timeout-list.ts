// Timeouts of many connections on one Node.js timer per duration. A Node.js
// timer costs an object, an async id and a list insertion per setTimeout(), and
// most connections end long before their connect or idle timeout. Here a
// connection's timeout is a place in a list ordered by deadline, so adding and
// removing one only links and unlinks it. The list's single timer fires at the
// first deadline, and removals leave it alone: it may fire once and find
// nothing due.

/** An object whose timeout a TimeoutList keeps. The list owns these fields. */
export interface TimeoutEntry {
  /** When the timeout is due, from performance.now(). */
  timeoutAt: number;
  previousTimeout: TimeoutEntry | undefined;
  nextTimeout: TimeoutEntry | undefined;
  /** The list the entry is in, or undefined when it is in none. */
  timeoutList: TimeoutList | undefined;
  /** Runs once the timeout is due, after the list has removed the entry. */
  onTimeout(now: number): void;
}

/** Creates an entry that runs `onTimeout` when due and is in no list yet. */
export function timeoutEntry(onTimeout: (now: number) => void): TimeoutEntry {
  return { timeoutAt: 0, previousTimeout: undefined, nextTimeout: undefined, timeoutList: undefined, onTimeout };
}

/** Entries in deadline order, with one Node.js timer set for the first. */
export class TimeoutList {
  private first: TimeoutEntry | undefined;
  private last: TimeoutEntry | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires, from performance.now(), or infinity without a timer. */
  private timerAt = Number.POSITIVE_INFINITY;

  /** Whether no entry is in the list. */
  get empty(): boolean {
    return this.first === undefined;
  }

  /** Adds `entry` to run at `timeoutAt`, a time from performance.now(). The entry must be in no list. */
  add(entry: TimeoutEntry, timeoutAt: number): void {
    entry.timeoutAt = timeoutAt;
    entry.timeoutList = this;
    // The entries of one list share a duration, so a new one almost always goes
    // last. An idle connection that is checked again goes where its last activity puts it.
    let before = this.last;
    while (before !== undefined && before.timeoutAt > timeoutAt) before = before.previousTimeout;
    const after = before === undefined ? this.first : before.nextTimeout;
    entry.previousTimeout = before;
    entry.nextTimeout = after;
    if (before === undefined) this.first = entry;
    else before.nextTimeout = entry;
    if (after === undefined) this.last = entry;
    else after.previousTimeout = entry;
    if (timeoutAt < this.timerAt) this.setTimer(timeoutAt);
  }

  /** Removes `entry` if it is in this list. */
  remove(entry: TimeoutEntry): void {
    if (entry.timeoutList !== this) return;
    const { previousTimeout: before, nextTimeout: after } = entry;
    if (before === undefined) this.first = after;
    else before.nextTimeout = after;
    if (after === undefined) this.last = before;
    else after.previousTimeout = before;
    entry.previousTimeout = undefined;
    entry.nextTimeout = undefined;
    entry.timeoutList = undefined;
  }

  private setTimer(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.fire, Math.max(0, at - performance.now()));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let entry = this.first;
    // An entry may add itself again, later than `now`, so the loop ends.
    while (entry !== undefined && entry.timeoutAt <= now) {
      this.remove(entry);
      entry.onTimeout(now);
      entry = this.first;
    }
    // The first entry left gets the timer. It can be one that was due already if
    // Node.js fired the timer up to a millisecond early.
    if (this.first !== undefined && this.first.timeoutAt < this.timerAt) this.setTimer(this.first.timeoutAt);
  };
}

const listsByDuration = new Map<number, TimeoutList>();

/**
 * Returns the process's list for timeouts of `durationMs`. Each duration has its
 * own list, so that entries are nearly always added at the end of one.
 */
export function timeoutListFor(durationMs: number): TimeoutList {
  let list = listsByDuration.get(durationMs);
  if (list === undefined) {
    list = new TimeoutList();
    listsByDuration.set(durationMs, list);
  }
  return list;
}
