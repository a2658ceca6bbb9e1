// SIGHUP reloads: backends swapped in place under load, a listen address moved to
// a new worker generation, and invalid files rejected while the old config serves.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findClosedPort } from '../helpers/backends.js';
import {
  connectOutcome,
  helloOnce,
  startCommandBackend,
  startDownload,
  startShortLoops,
  type DownloadResult,
  type ShortResult,
  type TestServer,
  type Transfer,
} from '../helpers/load.js';
import { metricsAddress, scrape } from '../helpers/metrics.js';
import { MiB, patternSha256 } from '../helpers/pattern.js';
import { childPids } from '../helpers/process-tree.js';
import { operationsConfig, reloadRsp } from '../helpers/reload.js';
import { startRsp, type LogLine } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const SHORT_LOOPS = 50;
const RELOADS = 5;
/** Each phase between reloads lasts at least this long and carries at least MIN_PHASE_CONNECTIONS. */
const MIN_PHASE_MS = 1_000;
const MIN_PHASE_CONNECTIONS = 200;
const DOWNLOADS = 10;
const DOWNLOAD_BYTES = 96 * MiB;
/** 96 MiB at 8 MiB/s takes 12 s, longer than the five reload phases. */
const DOWNLOAD_BYTES_PER_SECOND = 8 * MiB;
const DOWNLOAD_SEED = 31;

type After = { after(fn: () => unknown): void };

async function startCommandBackends(t: After, names: readonly string[]): Promise<TestServer[]> {
  const servers: TestServer[] = [];
  for (const name of names) {
    const server = await startCommandBackend(name);
    t.after(() => server.close());
    servers.push(server);
  }
  return servers;
}

async function startDownloads(t: After, port: number, count: number, bytes: number, bytesPerSecond: number): Promise<Transfer<DownloadResult>[]> {
  const downloads: Transfer<DownloadResult>[] = [];
  for (let i = 0; i < count; i++) {
    const download = await startDownload(port, bytes, DOWNLOAD_SEED, bytesPerSecond);
    t.after(() => download.socket.destroy());
    downloads.push(download);
  }
  await waitFor('every download to receive its first bytes', () => downloads.every((download) => download.progress > 0));
  return downloads;
}

function describeDownload(index: number, result: DownloadResult): string {
  return `download ${index} from ${result.backend}: ${result.endedBy} after ${result.bytes} bytes, sha256 ${result.sha256}`;
}

/** Downloads that did not end cleanly with every byte of the pattern. */
async function brokenDownloads(downloads: readonly Transfer<DownloadResult>[], bytes: number): Promise<string[]> {
  const expectedSha = patternSha256(bytes, DOWNLOAD_SEED);
  const results = await Promise.all(downloads.map((download) => download.result));
  return results
    .map((result, index) => ({ result, index }))
    .filter(({ result }) => result.endedBy !== 'end' || result.bytes !== bytes || result.sha256 !== expectedSha)
    .map(({ result, index }) => describeDownload(index, result));
}

/**
 * Returns the backends a connection may reach, from the phases it spanned. Phase 2k is
 * the steady state with `sets[k]`. Phase 2k + 1 runs from the SIGHUP of reload
 * k + 1 until rsp reports it complete, when either set may serve a new connection.
 */
function allowedBackends(sets: readonly (readonly string[])[], result: ShortResult): Set<string> {
  const allowed = new Set<string>();
  for (let phase = result.startPhase; phase <= result.endPhase; phase++) {
    const steady = Math.floor(phase / 2);
    for (const name of sets[steady] ?? []) allowed.add(name);
    if (phase % 2 === 1) for (const name of sets[steady + 1] ?? []) allowed.add(name);
  }
  return allowed;
}

describe('reload', () => {
  test('backends swap under load', async (t) => {
    const setA = await startCommandBackends(t, ['a1', 'a2']);
    const setB = await startCommandBackends(t, ['b1', 'b2']);
    const configOf = (set: readonly TestServer[]): string => operationsConfig({ backends: set.map((backend) => backend.address) });
    // The config in force after reload k: A, then B, A, B, ... alternating.
    const sets = Array.from({ length: RELOADS + 1 }, (_, k) => (k % 2 === 0 ? setA : setB));
    const setNames = sets.map((set) => set.map((backend) => backend.name));
    const rsp = await startRsp({ config: configOf(setA), workers: 2 });
    t.after(() => rsp.stop());

    let phase = 0;
    const downloadsStartedAt = Date.now();
    const downloads = await startDownloads(t, rsp.port, DOWNLOADS, DOWNLOAD_BYTES, DOWNLOAD_BYTES_PER_SECOND);
    const loops = startShortLoops(rsp.port, SHORT_LOOPS, () => phase, 40_000);
    t.after(() => loops.stop());

    const verdicts: LogLine[] = [];
    const phaseSizes: number[] = [];
    let phaseStart = 0;
    const finishPhase = async (): Promise<void> => {
      await sleep(MIN_PHASE_MS);
      await waitFor('connections in this phase', () => loops.results.length - phaseStart >= MIN_PHASE_CONNECTIONS, 10_000);
      phaseSizes.push(loops.results.length - phaseStart);
    };

    await finishPhase();
    for (let reload = 1; reload <= RELOADS; reload++) {
      phase++;
      verdicts.push(await reloadRsp(rsp, configOf(sets[reload] as TestServer[])));
      phase++;
      phaseStart = loops.results.length;
      await finishPhase();
    }
    const downloadsInFlight = downloads.filter((download) => !download.done).length;
    const reloadsDoneAfterMs = Date.now() - downloadsStartedAt;
    await loops.stop();

    assert.deepEqual(
      verdicts.map((verdict) => `${verdict.msg} ${String(verdict.mode)}`),
      Array(RELOADS).fill('reload complete in_place'),
    );
    assert.equal(downloadsInFlight, DOWNLOADS, 'every download must still run when the last reload completes');
    const failures = loops.results.filter((result) => result.failure !== undefined).map((result) => result.failure);
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${loops.results.length} short connections failed`);
    const misrouted = loops.results
      .filter((result) => !allowedBackends(setNames, result).has(result.backend))
      .map((result) => `${result.backend} in phases ${result.startPhase} to ${result.endPhase}`);
    assert.deepEqual(misrouted.slice(0, 10), [], `${misrouted.length} of ${loops.results.length} connections reached a backend not in force`);
    assert.deepEqual(await brokenDownloads(downloads, DOWNLOAD_BYTES), []);
    // Reload 1 removed set A, so these downloads ran on backends no longer configured.
    const downloadBackends = new Set((await Promise.all(downloads.map((download) => download.result))).map((result) => result.backend));
    assert.deepEqual([...downloadBackends].sort(), ['a1', 'a2']);
    const samples = await scrape(metricsAddress(rsp.started));
    assert.equal(samples.sum('rsp_config_reloads_total', { result: 'success' }), RELOADS);
    t.diagnostic(`short connections per phase: ${phaseSizes.join(', ')}; reloads done ${reloadsDoneAfterMs} ms after the downloads started`);
  });

  test('new listen port drains the old', async (t) => {
    const [backend] = await startCommandBackends(t, ['c1']);
    const backendAddress = (backend as TestServer).address;
    const rsp = await startRsp({ config: operationsConfig({ backends: [backendAddress] }), workers: 2 });
    t.after(() => rsp.stop());
    const oldPort = rsp.port;
    const oldWorkers = childPids(rsp.pid);

    // 24 MiB at 8 MiB/s keeps each download open for about 3 s after the reload starts.
    const downloads = await startDownloads(t, oldPort, 4, 24 * MiB, 8 * MiB);
    const newPort = await findClosedPort();
    const verdict = await reloadRsp(rsp, operationsConfig({ backends: [backendAddress], listen: `127.0.0.1:${newPort}` }));
    const onNewPort = await helloOnce(newPort, 'new-port');
    // The retiring workers stop accepting at once and keep their open connections. A
    // probe that connects before they close their listeners is one more connection to drain.
    let probesConnected = 0;
    const oldPortState = await waitFor(
      'the old port to refuse connections',
      async () => {
        const outcome = await connectOutcome(oldPort);
        if (outcome === 'connected') probesConnected++;
        return outcome === 'ECONNREFUSED' ? 'refused' : undefined;
      },
      3_000,
    );
    const inFlight = downloads.filter((download) => !download.done).length;

    assert.equal(verdict.msg, 'reload complete; previous workers are draining');
    assert.equal(verdict.mode, 'new_generation');
    assert.equal(onNewPort.failure, undefined);
    assert.equal(onNewPort.backend, 'c1');
    assert.equal(oldPortState, 'refused');
    assert.equal(inFlight, 4, 'every download must still run when the old port stops accepting');
    assert.deepEqual(await brokenDownloads(downloads, 24 * MiB), []);

    await waitFor('the old workers to exit', () => !childPids(rsp.pid).some((pid) => oldWorkers.includes(pid)), 10_000, () =>
      childPids(rsp.pid).join(', '),
    );
    assert.equal(await connectOutcome(oldPort), 'ECONNREFUSED');
    const drained = rsp.lines().filter((line) => line.msg === 'worker drained; exiting' && oldWorkers.includes(line.pid ?? 0));
    assert.equal(drained.length, 2);
    assert.equal(drained.reduce((sum, line) => sum + Number(line.finished), 0), 4 + probesConnected);
    assert.equal(drained.reduce((sum, line) => sum + Number(line.cut), 0), 0);
  });

  test('invalid file keeps the running config', async (t) => {
    const [current, proposed] = await startCommandBackends(t, ['current', 'proposed']);
    const currentAddress = (current as TestServer).address;
    const proposedAddress = (proposed as TestServer).address;
    const rsp = await startRsp({ config: operationsConfig({ backends: [currentAddress] }), workers: 1 });
    t.after(() => rsp.stop());
    const address = metricsAddress(rsp.started);

    const syntaxError = await reloadRsp(rsp, `listen = "127.0.0.1:0"\nbackends = { "${proposedAddress}"\n`);
    assert.equal(syntaxError.msg, 'reload failed: the config is invalid; keeping the running config');
    assert.equal(syntaxError.level, 'error');
    assert.equal(syntaxError.code, 'RSP_ERR_CONFIG_LUA');
    assert.deepEqual(syntaxError.issues, [`${rsp.configFile}:3: '}' expected (to close '{' at line 2) near <eof>`]);
    let samples = await scrape(address);
    assert.equal(samples.sum('rsp_config_reloads_total', { result: 'failure' }), 1);
    assert.equal((await helloOnce(rsp.port, 'after-syntax-error')).backend, 'current');

    const invalidWeight = await reloadRsp(
      rsp,
      `listen = "127.0.0.1:0"\nbackends = { { address = "${proposedAddress}", weight = -1 } }\n`,
    );
    assert.equal(invalidWeight.msg, 'reload failed: the config is invalid; keeping the running config');
    assert.equal(invalidWeight.code, 'RSP_ERR_CONFIG_INVALID');
    assert.deepEqual(invalidWeight.issues, [`${rsp.configFile}: backends[1].weight must be a positive integer, got -1`]);
    samples = await scrape(address);
    assert.equal(samples.sum('rsp_config_reloads_total', { result: 'failure' }), 2);
    assert.equal(samples.sum('rsp_config_reloads_total', { result: 'success' }), 0);
    assert.deepEqual(
      samples.select('rsp_backend_up').map((sample) => sample.labels.backend),
      [currentAddress],
    );

    const served: string[] = [];
    for (let i = 0; i < 4; i++) served.push((await helloOnce(rsp.port, `after-invalid-${i}`)).backend);
    assert.deepEqual(served, ['current', 'current', 'current', 'current']);
    assert.equal((proposed as TestServer).accepted, 0);
  });
});
