// The worker's plain-number connection metrics must render the same text as
// prom-client's own metrics with the same counts, through the primary's aggregation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ConnectionStats, HistogramCounts } from '../../src/metrics/connection-stats.js';
import { CONNECTION_STATS } from '../../src/metrics/definitions.js';

/** Values on and between the bucket bounds, below the first and above the last. */
const CONNECT_TIMES = [0, 0.0004, 0.0005, 0.00051, 0.003, 0.1, 5, 7.5, 0.001, 0.001];
const DURATIONS = [0.002, 0.005, 0.7, 3600, 4000, 12];

/** Returns a prom-client registry with the counts that connectionStats() records. */
function promClientRegistry(): Registry {
  const registry = new Registry();
  const registers = [registry];
  const { connectionsTotal, connectionsActive, bytesTotal, connectionDuration, backendConnectDuration } = CONNECTION_STATS;
  const labelNames = ['service', 'backend'];
  const connections = new Counter({ ...connectionsTotal, labelNames, registers });
  const active = new Gauge({ ...connectionsActive, labelNames, registers });
  const bytes = new Counter({ ...bytesTotal, labelNames: [...labelNames, 'direction'], registers });
  const durations = new Histogram({
    ...connectionDuration,
    buckets: [...connectionDuration.buckets],
    labelNames: ['service'],
    registers,
  });
  const connects = new Histogram({
    ...backendConnectDuration,
    buckets: [...backendConnectDuration.buckets],
    labelNames,
    registers,
  });

  const labels = { service: 'web', backend: '127.0.0.1:8081' };
  connections.inc(labels, CONNECT_TIMES.length);
  active.set(labels, 2);
  bytes.inc({ ...labels, direction: 'upstream' }, 1200);
  bytes.inc({ ...labels, direction: 'downstream' }, 0);
  for (const value of CONNECT_TIMES) connects.observe(labels, value);
  for (const value of DURATIONS) durations.observe({ service: 'web' }, value);
  return registry;
}

function connectionStats(): ConnectionStats {
  const stats = new ConnectionStats();
  const backend = stats.backend('web', '127.0.0.1:8081');
  for (const value of CONNECT_TIMES) {
    backend.connections++;
    backend.connectDuration.observe(value);
  }
  backend.open = 2;
  backend.bytesUpstream = 1200;
  const durations = stats.connectionDuration('web');
  for (const value of DURATIONS) durations.observe(value);
  // Known but never used: no series.
  stats.backend('web', '127.0.0.1:8082');
  stats.connectionDuration('idle');
  return stats;
}

describe('connection stats', () => {
  test('renders like prom-client', async () => {
    const expected = await AggregatorRegistry.aggregate([await promClientRegistry().getMetricsAsJSON()]).metrics();
    const actual = await AggregatorRegistry.aggregate([connectionStats().snapshot()]).metrics();
    assert.equal(actual, expected);
  });

  test('sums workers like prom-client', async () => {
    const expected = await AggregatorRegistry.aggregate([
      await promClientRegistry().getMetricsAsJSON(),
      await promClientRegistry().getMetricsAsJSON(),
    ]).metrics();
    const actual = await AggregatorRegistry.aggregate([connectionStats().snapshot(), connectionStats().snapshot()]).metrics();
    assert.equal(actual, expected);
  });

  test('reuses objects per label set', () => {
    const stats = new ConnectionStats();
    assert.equal(stats.backend('web', 'a:1'), stats.backend('web', 'a:1'));
    assert.notEqual(stats.backend('web', 'a:1'), stats.backend('api', 'a:1'));
    assert.equal(stats.connectionDuration('web'), stats.connectionDuration('web'));
  });

  test('counts bound value in bucket', () => {
    const histogram = new HistogramCounts([1, 2]);
    for (const value of [1, 2, 2.5]) histogram.observe(value);
    const buckets = histogram.samples('x', {}).filter((sample) => sample.metricName === 'x_bucket');
    assert.deepEqual(
      buckets.map((sample) => [sample.labels['le'], sample.value]),
      [
        [1, 1],
        [2, 2],
        ['+Inf', 3],
      ],
    );
  });
});
