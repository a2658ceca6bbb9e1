import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TimeoutList, timeoutEntry, timeoutListFor, type TimeoutEntry } from '../../src/timeout-list.js';
import { sleep } from '../helpers/wait.js';

/**
 * Node's timers count from the event loop's cached clock, so a timer can fire up
 * to about a millisecond earlier than performance.now() would have it.
 */
const TIMER_SLACK_MS = 2;

/** A timeout that ran: the entry's name and the time, from performance.now(). */
interface Fired {
  readonly name: string;
  readonly at: number;
}

/**
 * Creates an empty list and `addAfter(name, delayMs)`, which adds an entry due
 * `delayMs` after `start` that records itself in `fired` when it runs.
 */
function recordingList(): { list: TimeoutList; start: number; fired: Fired[]; addAfter: (name: string, delayMs: number) => TimeoutEntry } {
  const list = new TimeoutList();
  const start = performance.now();
  const fired: Fired[] = [];
  const addAfter = (name: string, delayMs: number): TimeoutEntry => {
    const entry = timeoutEntry((now) => fired.push({ name, at: now }));
    list.add(entry, start + delayMs);
    return entry;
  };
  return { list, start, fired, addAfter };
}

describe('timeout list', () => {
  test('runs entries in deadline order', async () => {
    const { list, start, fired, addAfter } = recordingList();
    // Added out of order: the list sorts them.
    addAfter('third', 90);
    addAfter('first', 30);
    addAfter('second', 60);

    await sleep(150);
    assert.deepEqual(fired.map((entry) => entry.name), ['first', 'second', 'third']);
    for (const [index, due] of [30, 60, 90].entries()) {
      const late = fired[index]!.at - start - due;
      assert.ok(late >= -TIMER_SLACK_MS, `${fired[index]!.name} ran ${-late} ms early`);
    }
    assert.equal(list.empty, true);
  });

  test('skips removed entries', async () => {
    const { list, fired, addAfter } = recordingList();
    const removed = addAfter('removed', 20);
    addAfter('kept', 40);
    list.remove(removed);
    // A second removal, or one from a list the entry is not in, changes nothing.
    list.remove(removed);
    new TimeoutList().remove(removed);

    await sleep(100);
    assert.deepEqual(fired.map((entry) => entry.name), ['kept']);
    assert.equal(removed.timeoutList, undefined);
  });

  test('runs an entry added again', async () => {
    const list = new TimeoutList();
    const start = performance.now();
    const runs: number[] = [];
    // The entry adds itself again for later, as an idle timeout does after recent activity.
    const entry: TimeoutEntry = timeoutEntry((now) => {
      runs.push(now - start);
      if (runs.length < 3) list.add(entry, now + 20);
    });
    list.add(entry, start + 20);

    await sleep(150);
    assert.equal(runs.length, 3, `runs at ${runs.map((at) => at.toFixed(1)).join(', ')} ms`);
    assert.ok(runs[2]! >= 60 - 3 * TIMER_SLACK_MS, `the third run came at ${runs[2]!.toFixed(1)} ms`);
  });

  test('moves its timer for an earlier entry', async () => {
    const { list, fired, addAfter } = recordingList();
    addAfter('late', 1_000);
    addAfter('early', 20);

    await sleep(100);
    assert.deepEqual(fired.map((entry) => entry.name), ['early']);
    assert.equal(list.empty, false);
  });

  test('keeps one list per duration', () => {
    assert.equal(timeoutListFor(5_000), timeoutListFor(5_000));
    assert.notEqual(timeoutListFor(5_000), timeoutListFor(300_000));
  });
});
