// Scenarios A to E. Each one measures a started target and returns its figures.
// The harness starts a fresh target for every scenario, so memory figures do not
// carry over from the scenario before.
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { FILES, HOST } from './backends.mjs';
import { countEstablishedTo, curlDownload, openConnections, requestOnEach, runWrk, slowRead } from './clients.mjs';
import { treeRssBytes } from './processes.mjs';

const MiB = 2 ** 20;
const MB = 1e6;

/** Durations, sizes and counts of a full run and of a quick run (--quick). */
export const SETTINGS = {
  full: {
    wrkSeconds: 10,
    warmupSeconds: 2,
    wrkConnections: 64,
    bulkSingle: FILES.bulk1g,
    bulkParallel: FILES.bulk256m,
    parallelTransfers: 8,
    slowReadSeconds: 8,
    slowReadBytesPerSecond: 20 * MB,
    idleConnections: 5000,
  },
  quick: {
    wrkSeconds: 3,
    warmupSeconds: 1,
    wrkConnections: 64,
    bulkSingle: FILES.bulk256m,
    bulkParallel: FILES.bulk32m,
    parallelTransfers: 8,
    slowReadSeconds: 3,
    slowReadBytesPerSecond: 20 * MB,
    idleConnections: 1000,
  },
};

/**
 * Figures that get a ratio to the best of HAProxy and nginx. `better` is the
 * direction that is better. `goal` is what rsp must reach, either as a ratio or as
 * a maximum in the figure's own unit. `referenceFloor` is the smallest reference
 * figure a ratio is taken to.
 */
export const METRICS = [
  { key: 'aRequestsPerSecond', scenario: 'A', label: 'A keep-alive req/s', unit: 'req/s', better: 'higher', goal: { minRatio: 0.9 } },
  { key: 'aP50Ms', scenario: 'A', label: 'A p50 latency', unit: 'ms', better: 'lower' },
  { key: 'aP99Ms', scenario: 'A', label: 'A p99 latency', unit: 'ms', better: 'lower', goal: { maxRatio: 1.5 } },
  { key: 'bRequestsPerSecond', scenario: 'B', label: 'B new-connection req/s', unit: 'req/s', better: 'higher', goal: { minRatio: 0.8 } },
  { key: 'bP99Ms', scenario: 'B', label: 'B p99 latency', unit: 'ms', better: 'lower' },
  { key: 'cSingleMBps', scenario: 'C', label: 'C 1 transfer MB/s', unit: 'MB/s', better: 'higher', goal: { minRatio: 0.9 } },
  { key: 'cParallelMBps', scenario: 'C', label: 'C 8 transfers MB/s', unit: 'MB/s', better: 'higher', goal: { minRatio: 0.9 } },
  // HAProxy and nginx grow by a few KiB here, which would turn every ratio into
  // thousands. The ratio is taken to at least 1 MiB instead.
  { key: 'dRssGrowthMiB', scenario: 'D', label: 'D slow-reader RSS growth', unit: 'MiB', better: 'lower', goal: { max: 4 }, referenceFloor: 1 },
  { key: 'eRssPerConnectionKiB', scenario: 'E', label: 'E RSS per idle connection', unit: 'KiB', better: 'lower', goal: { max: 8 } },
];

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Returns the median of `count` samples of the process tree's RSS taken `intervalMs` apart. */
async function settledRss(rootPid, { count = 5, intervalMs = 100 } = {}) {
  const samples = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) await sleep(intervalMs);
    samples.push(treeRssBytes(rootPid));
  }
  return median(samples);
}

function wrkErrorNote(figures) {
  const { connect, read, write, timeout, non2xx } = figures.errors;
  const total = connect + read + write + timeout + non2xx;
  if (total === 0) return undefined;
  return `wrk errors: connect ${connect}, read ${read}, write ${write}, timeout ${timeout}, non-2xx ${non2xx}`;
}

function url(port, file) {
  return `http://${HOST}:${port}${file.path}`;
}

async function runRequestScenario({ port }, settings, closeEachConnection) {
  const target = url(port, FILES.small);
  const common = { url: target, connections: settings.wrkConnections, closeEachConnection };
  await runWrk({ ...common, durationSeconds: settings.warmupSeconds });
  return runWrk({ ...common, durationSeconds: settings.wrkSeconds });
}

export const SCENARIOS = [
  {
    id: 'A',
    title: 'keep-alive small responses',
    describe: (s) => `wrk -t1 -c${s.wrkConnections} -d${s.wrkSeconds}s --latency, ${FILES.small.bytes}-byte file, after a ${s.warmupSeconds} s warm-up`,
    columns: [
      { key: 'aRequestsPerSecond', label: 'req/s' },
      { key: 'aP50Ms', label: 'p50 ms' },
      { key: 'aP99Ms', label: 'p99 ms' },
    ],
    appliesTo: () => true,
    async run(started, settings) {
      const figures = await runRequestScenario(started, settings, false);
      return {
        aRequestsPerSecond: figures.requestsPerSecond,
        aP50Ms: figures.p50Ms,
        aP99Ms: figures.p99Ms,
        note: wrkErrorNote(figures),
      };
    },
  },
  {
    id: 'B',
    title: 'a new connection per request',
    describe: (s) => `wrk -t1 -c${s.wrkConnections} -d${s.wrkSeconds}s --latency -H "Connection: close", after a ${s.warmupSeconds} s warm-up`,
    columns: [
      { key: 'bRequestsPerSecond', label: 'req/s' },
      { key: 'bP99Ms', label: 'p99 ms' },
    ],
    appliesTo: () => true,
    async run(started, settings) {
      const figures = await runRequestScenario(started, settings, true);
      return { bRequestsPerSecond: figures.requestsPerSecond, bP99Ms: figures.p99Ms, note: wrkErrorNote(figures) };
    },
  },
  {
    id: 'C',
    title: 'bulk transfers',
    describe: (s) =>
      `curl -o /dev/null: one ${s.bulkSingle.bytes / MiB} MiB transfer, then ${s.parallelTransfers} parallel ${s.bulkParallel.bytes / MiB} MiB transfers (MB = 10^6 bytes)`,
    columns: [
      { key: 'cSingleMBps', label: '1 transfer MB/s' },
      { key: 'cParallelMBps', label: `8 transfers MB/s` },
    ],
    appliesTo: () => true,
    async run(started, settings, context) {
      // The direct target has no balancer, so the parallel transfers take the backends in turn.
      const ports = started.direct ? context.backends.map((backend) => backend.port) : [started.port];
      const timeoutSeconds = 120;
      await curlDownload(url(started.port, FILES.bulk32m), { expectedBytes: FILES.bulk32m.bytes, timeoutSeconds });

      const single = await curlDownload(url(started.port, settings.bulkSingle), { expectedBytes: settings.bulkSingle.bytes, timeoutSeconds });

      const begin = performance.now();
      const transfers = [];
      for (let i = 0; i < settings.parallelTransfers; i++) {
        const port = ports[i % ports.length];
        transfers.push(curlDownload(url(port, settings.bulkParallel), { expectedBytes: settings.bulkParallel.bytes, timeoutSeconds }));
      }
      const results = await Promise.all(transfers);
      const wallSeconds = (performance.now() - begin) / 1000;
      const parallelBytes = results.reduce((sum, result) => sum + result.bytes, 0);

      return {
        cSingleMBps: single.bytes / single.seconds / MB,
        cParallelMBps: parallelBytes / wallSeconds / MB,
      };
    },
  },
  {
    id: 'D',
    title: 'slow reader',
    describe: (s) =>
      `one client reads a ${FILES.bulk1g.bytes / MiB} MiB response at ${s.slowReadBytesPerSecond / MB} MB/s for ${s.slowReadSeconds} s; peak growth of the summed VmRSS of the proxy's processes over the value before the request`,
    columns: [
      { key: 'dRssGrowthMiB', label: 'RSS growth MiB' },
      { key: 'dBaselineRssMiB', label: 'RSS before MiB' },
      { key: 'dReadMBps', label: 'read MB/s' },
    ],
    appliesTo: (target) => !target.direct,
    async run(started, settings) {
      const pid = started.handle.child.pid;
      // Warm-up: some ordinary requests, so the baseline is the memory of a proxy in use.
      await runWrk({ url: url(started.port, FILES.small), connections: 8, durationSeconds: 1 });
      await sleep(500);
      const baseline = await settledRss(pid);

      const begin = performance.now();
      const timeline = [];
      const sample = () => {
        const rss = treeRssBytes(pid);
        timeline.push([Math.round(performance.now() - begin) / 1000, Math.round(((rss - baseline) / MiB) * 100) / 100]);
        return rss;
      };
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, sample());
      }, 100);
      let read;
      try {
        read = await slowRead({
          port: started.port,
          path: FILES.bulk1g.path,
          bytesPerSecond: settings.slowReadBytesPerSecond,
          durationMs: settings.slowReadSeconds * 1000,
        });
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, sample());

      return {
        dRssGrowthMiB: (peak - baseline) / MiB,
        dBaselineRssMiB: baseline / MiB,
        dReadMBps: read.bytes / read.seconds / MB,
        // [seconds since the request, RSS growth in MiB], every 100 ms; JSON only.
        dRssTimeline: timeline,
      };
    },
  },
  {
    id: 'E',
    title: 'idle connections',
    describe: (s) =>
      `${s.idleConnections} idle connections held open through the proxy; RSS growth of the proxy's processes divided by the count, then one request on every connection`,
    columns: [
      { key: 'eRssPerConnectionKiB', label: 'RSS per connection KiB' },
      { key: 'eBaselineRssMiB', label: 'RSS before MiB' },
      { key: 'eAnswered', label: 'answered afterwards' },
    ],
    appliesTo: (target) => !target.direct,
    async run(started, settings, context) {
      const pid = started.handle.child.pid;
      const backendPorts = context.backends.map((backend) => backend.port);
      const count = settings.idleConnections;

      // Warm-up: open, use and close some connections first.
      const warmup = await openConnections([started.port], 100);
      await requestOnEach(warmup, FILES.small.path);
      for (const socket of warmup) socket.destroy();
      await sleep(500);
      const baseline = await settledRss(pid);
      const backendConnectionsBefore = countEstablishedTo(backendPorts);

      const sockets = await openConnections([started.port], count);
      try {
        // A connection costs the proxy its full memory only once the proxy has
        // connected it to a backend, so wait until the backends see all of them.
        const deadline = Date.now() + 30_000;
        let connected = countEstablishedTo(backendPorts) - backendConnectionsBefore;
        while (connected < count && Date.now() < deadline) {
          await sleep(100);
          connected = countEstablishedTo(backendPorts) - backendConnectionsBefore;
        }
        await sleep(1000);
        const withConnections = await settledRss(pid);
        const answered = await requestOnEach(sockets, FILES.small.path);
        const notes = [];
        if (connected < count) notes.push(`only ${connected} of ${count} connections reached a backend within 30 s`);
        if (answered < count) notes.push(`${count - answered} of ${count} connections did not answer afterwards`);
        return {
          eRssPerConnectionKiB: (withConnections - baseline) / count / 1024,
          eBaselineRssMiB: baseline / MiB,
          eAnswered: `${answered}/${count}`,
          note: notes.length > 0 ? notes.join('; ') : undefined,
        };
      } finally {
        for (const socket of sockets) socket.destroy();
      }
    },
  },
];
