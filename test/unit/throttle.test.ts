import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { Throttle } from '../../src/throttle.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Node's timers count from the event loop's cached clock, so a timer can fire up
 * to about a millisecond earlier than performance.now() would have it.
 */
const TIMER_SLACK_MS = 2;

/** Creates a throttle whose action records when it ran, from performance.now(). */
function recordingThrottle(): { throttle: Throttle; runs: number[] } {
  const runs: number[] = [];
  return { throttle: new Throttle(() => runs.push(performance.now())), runs };
}

/** Waits for the second run and returns its distance from the first, in ms. */
async function secondRunGap(runs: readonly number[]): Promise<number> {
  await waitFor('the second run', () => runs.length >= 2, 5_000);
  return (runs[1] as number) - (runs[0] as number);
}

describe('throttle', () => {
  test('runs at the end of the turn', async () => {
    const { throttle, runs } = recordingThrottle();

    throttle.request(50);
    throttle.request(50);
    assert.equal(runs.length, 0, 'the action ran inside request()');
    await nextTurn();
    assert.equal(runs.length, 1);
  });

  test('merges requests within the interval', async () => {
    const { throttle, runs } = recordingThrottle();
    throttle.request(100);
    await nextTurn();

    throttle.request(100);
    throttle.request(100);
    const gap = await secondRunGap(runs);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(runs.length, 2, 'two requests within the interval ran twice');
    assert.ok(gap >= 100 - TIMER_SLACK_MS, `the second run came ${gap.toFixed(1)} ms after the first; the interval is 100 ms`);
  });

  test('moves a run earlier for a shorter interval', async () => {
    const { throttle, runs } = recordingThrottle();
    throttle.request(10_000);
    await nextTurn();

    throttle.request(10_000);
    throttle.request(20);
    const gap = await secondRunGap(runs);
    assert.ok(gap >= 20 - TIMER_SLACK_MS, `the second run came ${gap.toFixed(1)} ms after the first; the interval is 20 ms`);
  });
});
