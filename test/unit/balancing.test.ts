import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BalancedBackend } from '../../src/balancing/balancer.js';
import { createBalancer } from '../../src/balancing/create-balancer.js';
import { LeastConnections } from '../../src/balancing/least-connections.js';
import { RoundRobin } from '../../src/balancing/round-robin.js';

function makeBackends(...weights: number[]): BalancedBackend[] {
  return weights.map((weight, index) => ({
    config: { address: `127.0.0.1:${8081 + index}`, host: '127.0.0.1', port: 8081 + index, weight, backup: false, proxyProtocol: null, maxConnections: null, resolve: false },
    active: 0,
    othersActive: 0,
    up: true,
    limitView: { current: true, workers: 1 },
  }));
}

function pickSequence(balancer: { pick(exclude: ReadonlySet<BalancedBackend>): BalancedBackend | undefined }, count: number): number[] {
  const sequence: number[] = [];
  for (let i = 0; i < count; i++) {
    const backend = balancer.pick(new Set());
    assert.ok(backend);
    sequence.push(backend.config.port - 8081);
  }
  return sequence;
}

describe('round robin', () => {
  test('alternates equal weights', () => {
    const balancer = new RoundRobin(makeBackends(1, 1));
    assert.deepEqual(pickSequence(balancer, 6), [0, 1, 0, 1, 0, 1]);
  });

  test('interleaves weight 2 and 1', () => {
    const balancer = new RoundRobin(makeBackends(2, 1));
    assert.deepEqual(pickSequence(balancer, 6), [0, 1, 0, 0, 1, 0]);
  });

  test('spreads weights 5 1 1 smoothly', () => {
    const balancer = new RoundRobin(makeBackends(5, 1, 1));
    const sequence = pickSequence(balancer, 7);
    assert.deepEqual(sequence, [0, 0, 1, 0, 2, 0, 0]);
  });

  test('keeps exact shares over many rounds', () => {
    const balancer = new RoundRobin(makeBackends(3, 2, 1));
    const counts = [0, 0, 0];
    for (const index of pickSequence(balancer, 600)) counts[index]!++;
    assert.deepEqual(counts, [300, 200, 100]);
  });

  test('skips excluded backends', () => {
    const backends = makeBackends(1, 1, 1);
    const balancer = new RoundRobin(backends);
    const excluded = new Set([backends[1]!]);
    for (let i = 0; i < 10; i++) assert.notEqual(balancer.pick(excluded), backends[1]);
  });

  test('returns undefined when all are excluded', () => {
    const backends = makeBackends(1, 2);
    const balancer = new RoundRobin(backends);
    assert.equal(balancer.pick(new Set(backends)), undefined);
  });
});

describe('round robin across workers', () => {
  /**
   * Three workers, each with its own balancer and backend objects, pick in a fixed
   * irregular order and replay every pick into the other two, as the load views
   * do. Returns the picks per backend after each step.
   */
  function clusterPicks(weights: readonly number[], steps: number): number[][] {
    const workers = [0, 1, 2].map((slot) => {
      const backends = makeBackends(...weights);
      return { backends, balancer: new RoundRobin(backends, slot) };
    });
    const counts = weights.map(() => 0);
    const history: number[][] = [];
    for (let step = 0; step < steps; step++) {
      const picker = (step * step + 3 * step) % 7 % 3;
      const worker = workers[picker]!;
      const backend = worker.balancer.pick(new Set());
      assert.ok(backend);
      const index = worker.backends.indexOf(backend);
      counts[index]!++;
      workers.forEach((other, slot) => {
        if (slot !== picker) other.balancer.notePicks(other.backends[index]!, 1);
      });
      history.push([...counts]);
    }
    return history;
  }

  for (const weights of [[1, 1, 1, 1], [2, 1], [3, 2, 1]]) {
    test(`stays within one pick of the shares ${weights.join(':')}`, () => {
      const total = weights.reduce((sum, weight) => sum + weight, 0);
      clusterPicks(weights, 60).forEach((counts, step) => {
        counts.forEach((count, index) => {
          const share = ((step + 1) * weights[index]!) / total;
          assert.ok(Math.abs(count - share) <= 1, `after ${step + 1} picks: ${counts.join(' ')}`);
        });
      });
    });
  }

  test('keeps the turn after a retry', () => {
    const backends = makeBackends(1, 1);
    const balancer = new RoundRobin(backends);
    // Each connection tries a backend first and retries on the other one, as after
    // a failed connect. The first choices still alternate.
    const firstChoices: number[] = [];
    for (let i = 0; i < 4; i++) {
      const first = balancer.pick(new Set());
      assert.ok(first);
      firstChoices.push(first.config.port - 8081);
      assert.ok(balancer.pick(new Set([first])));
    }
    assert.deepEqual(firstChoices, [0, 1, 0, 1]);
  });

  test('replays several picks at once', () => {
    const backends = makeBackends(1, 1, 1);
    const balancer = new RoundRobin(backends);
    // Other workers sent 2 to the first backend and 1 to the second. This worker
    // still sends one of each three to every backend, and starts each of its
    // rounds with the backend the cluster served least.
    balancer.notePicks(backends[0]!, 2);
    balancer.notePicks(backends[1]!, 1);
    assert.deepEqual(pickSequence(balancer, 6), [2, 1, 0, 2, 1, 0]);
  });
});

describe('least connections', () => {
  test('picks the backend with fewer connections', () => {
    const backends = makeBackends(1, 1);
    backends[0]!.active = 3;
    const balancer = new LeastConnections(backends);
    assert.equal(balancer.pick(new Set()), backends[1]);
  });

  test('takes turns on ties', () => {
    const balancer = new LeastConnections(makeBackends(1, 1, 1));
    assert.deepEqual(pickSequence(balancer, 6), [0, 1, 2, 0, 1, 2]);
  });

  test('weighs connections by weight', () => {
    const backends = makeBackends(2, 1);
    backends[0]!.active = 3;
    backends[1]!.active = 2;
    const balancer = new LeastConnections(backends);
    // 3/2 = 1.5 connections per unit of weight against 2/1 = 2.
    assert.equal(balancer.pick(new Set()), backends[0]);
  });

  test('evens out open connections', () => {
    const backends = makeBackends(1, 1);
    const balancer = new LeastConnections(backends);
    backends[0]!.active = 4;
    for (let i = 0; i < 4; i++) {
      const backend = balancer.pick(new Set());
      assert.equal(backend, backends[1]);
      backends[1]!.active++;
    }
    assert.equal(backends[1]!.active, 4);
  });

  test('skips excluded backends', () => {
    const backends = makeBackends(1, 1);
    const balancer = new LeastConnections(backends);
    assert.equal(balancer.pick(new Set([backends[0]!])), backends[1]);
    assert.equal(balancer.pick(new Set(backends)), undefined);
  });
});

describe('createBalancer', () => {
  test('maps algorithm names to classes', () => {
    assert.ok(createBalancer('round_robin', makeBackends(1)) instanceof RoundRobin);
    assert.ok(createBalancer('least_connections', makeBackends(1)) instanceof LeastConnections);
  });
});
