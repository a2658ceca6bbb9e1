// SIGTERM and SIGINT: rsp stops accepting, lets open connections finish until the
// drain deadline, cuts the rest and exits 0. A second SIGINT exits 130 at once.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { openConnection, readLine, receiveAll } from '../helpers/client.js';
import { connectOutcome, startCommandBackend, startDownload, type TestServer } from '../helpers/load.js';
import { httpGet, metricsAddress } from '../helpers/metrics.js';
import { NamespaceUnavailableError, startRspAsPid1 } from '../helpers/namespace.js';
import { MiB, patternSha256 } from '../helpers/pattern.js';
import { operationsConfig } from '../helpers/reload.js';
import { startRsp, type LogLine } from '../helpers/rsp.js';
import { waitFor, withTimeout } from '../helpers/wait.js';

type After = { after(fn: () => unknown): void };

async function startBackend(t: After): Promise<TestServer> {
  const backend = await startCommandBackend('c1');
  t.after(() => backend.close());
  return backend;
}

/** Opens a connection whose backend echoes every line, and checks one round trip. */
async function openEcho(t: After, port: number): Promise<Socket> {
  const socket = await openConnection(port);
  t.after(() => socket.destroy());
  socket.write('echo\n');
  assert.equal(await roundTrip(socket, 'opened'), 'opened');
  return socket;
}

/** Writes one line and reads the echoed line. readLine pauses the socket, so this resumes it. */
function roundTrip(socket: Socket, text: string): Promise<string> {
  const line = readLine(socket, 5_000);
  socket.resume();
  socket.write(`${text}\n`);
  return line;
}

/**
 * Resolves with the exit code, or null when a signal ended the process, once `child`
 * has exited and its stdout is closed, so every log line has been read.
 */
function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.stdout?.closed === true && (child.exitCode !== null || child.signalCode !== null)) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => child.once('close', (code) => resolve(code)));
}

/** Sums a numeric field over the workers' "worker drained; exiting" lines. */
function drainedSum(lines: readonly LogLine[], field: 'finished' | 'cut'): number {
  return lines.filter((line) => line.msg === 'worker drained; exiting').reduce((sum, line) => sum + Number(line[field]), 0);
}

describe('graceful stop', () => {
  test('open connections finish after SIGTERM', async (t) => {
    const backend = await startBackend(t);
    const rsp = await startRsp({ config: operationsConfig({ backends: [backend.address], timeouts: { drain: 10 } }), workers: 2 });
    t.after(() => rsp.stop());
    const address = metricsAddress(rsp.started);
    // 16 MiB at 8 MiB/s keeps each download open for about 2 s after the SIGTERM.
    const downloads = [await startDownload(rsp.port, 16 * MiB, 41, 8 * MiB), await startDownload(rsp.port, 16 * MiB, 41, 8 * MiB)];
    for (const download of downloads) t.after(() => download.socket.destroy());
    const echo = await openEcho(t, rsp.port);

    process.kill(rsp.pid, 'SIGTERM');
    await rsp.waitForLine((line) => line.msg === 'stopping: no new connections, draining open ones');
    const exited = exitCode(rsp.process);
    const readyz = await httpGet(address, '/readyz');
    // A probe that connects before the workers close their listeners is one more
    // connection that finishes during the drain.
    let probesConnected = 0;
    const listenPortState = await waitFor(
      'the listen port to refuse connections',
      async () => {
        const outcome = await connectOutcome(rsp.port);
        if (outcome === 'connected') probesConnected++;
        return outcome === 'ECONNREFUSED' ? 'refused' : undefined;
      },
      2_000,
    );
    const downloadsInFlight = downloads.filter((download) => !download.done).length;
    const echoedAfterStop = await roundTrip(echo, 'still flowing');
    echo.end();
    const echoEnd = await receiveAll(echo, { timeoutMs: 5_000 });
    const results = await Promise.all(downloads.map((download) => download.result));
    const code = await withTimeout(exited, 10_000, 'rsp to exit');

    assert.equal(readyz.status, 503);
    assert.equal(readyz.body, 'not ready: stopping\n');
    assert.equal(listenPortState, 'refused');
    assert.equal(downloadsInFlight, 2, 'both downloads must still run when the port refuses connections');
    assert.equal(echoedAfterStop, 'still flowing');
    assert.equal(echoEnd.endedBy, 'end');
    const expectedSha = patternSha256(16 * MiB, 41);
    for (const result of results) {
      assert.equal(result.endedBy, 'end');
      assert.equal(result.bytes, 16 * MiB);
      assert.equal(result.sha256, expectedSha);
    }
    assert.equal(code, 0);
    // A probe that connected may still have been closed by the primary before any
    // worker took it: the kernel completes handshakes on the listen socket until the
    // last worker has closed its listener. So each probe counts at most once.
    const finished = drainedSum(rsp.lines(), 'finished');
    assert.ok(finished >= 3, `connections finished, summed over workers: ${finished}, expected at least 3`);
    assert.ok(finished <= 3 + probesConnected, `connections finished, summed over workers: ${finished}, expected at most ${3 + probesConnected}`);
    assert.equal(drainedSum(rsp.lines(), 'cut'), 0, 'connections cut, summed over workers');
  });

  test('drain deadline cuts the rest', async (t) => {
    const backend = await startBackend(t);
    const rsp = await startRsp({
      config: operationsConfig({ backends: [backend.address], accessLog: true, timeouts: { drain: 1 } }),
      workers: 2,
    });
    t.after(() => rsp.stop());
    const echo = await openEcho(t, rsp.port);
    const clientEnd = receiveAll(echo, { timeoutMs: 10_000 });

    const signalledAt = Date.now();
    process.kill(rsp.pid, 'SIGTERM');
    const code = await withTimeout(exitCode(rsp.process), 10_000, 'rsp to exit');
    const elapsedMs = Date.now() - signalledAt;

    assert.equal(code, 0);
    assert.ok(elapsedMs >= 900, `rsp exited ${elapsedMs} ms after SIGTERM, before the 1 s drain deadline`);
    assert.ok(elapsedMs < 4_000, `rsp exited ${elapsedMs} ms after SIGTERM`);
    assert.equal(drainedSum(rsp.lines(), 'cut'), 1, 'connections cut, summed over workers');
    assert.equal(drainedSum(rsp.lines(), 'finished'), 0, 'connections finished, summed over workers');
    // receiveAll rejects unless the connection ends, so this checks that rsp closed it.
    await clientEnd;
  });

  test('second SIGINT exits 130', async (t) => {
    const backend = await startBackend(t);
    const rsp = await startRsp({ config: operationsConfig({ backends: [backend.address], timeouts: { drain: 30 } }), workers: 2 });
    t.after(() => rsp.stop());
    const echo = await openEcho(t, rsp.port);
    const clientEnd = receiveAll(echo, { timeoutMs: 10_000 });

    process.kill(rsp.pid, 'SIGINT');
    await rsp.waitForLine((line) => line.msg === 'stopping: no new connections, draining open ones');
    const signalledAt = Date.now();
    process.kill(rsp.pid, 'SIGINT');
    const code = await withTimeout(exitCode(rsp.process), 10_000, 'rsp to exit');
    const elapsedMs = Date.now() - signalledAt;

    assert.equal(code, 130);
    assert.ok(elapsedMs < 3_000, `rsp exited ${elapsedMs} ms after the second SIGINT`);
    // receiveAll rejects unless the connection ends, so this checks that rsp closed it.
    await clientEnd;
    assert.equal(drainedSum(rsp.lines(), 'cut'), 1, 'connections cut, summed over workers');
  });

  test('stops as PID 1 of a namespace', async (t) => {
    const backend = await startBackend(t);
    let rsp;
    try {
      rsp = await startRspAsPid1(operationsConfig({ backends: [backend.address], metrics: false, timeouts: { drain: 10 } }));
    } catch (error) {
      if (!(error instanceof NamespaceUnavailableError)) throw error;
      t.skip(`unshare cannot create a PID namespace here: ${error.message}`);
      return;
    }
    const namespaced = rsp;
    t.after(() => namespaced.kill());
    const echo = await openEcho(t, namespaced.port);

    process.kill(namespaced.pid, 'SIGTERM');
    await waitFor('the stopping line', () => namespaced.lines().some((line) => line.msg === 'stopping: no new connections, draining open ones'), 5_000, () =>
      namespaced.stdout(),
    );
    const echoedAfterStop = await roundTrip(echo, 'still flowing');
    echo.end();
    const echoEnd = await receiveAll(echo, { timeoutMs: 5_000 });
    const code = await withTimeout(namespaced.exited, 10_000, 'rsp and unshare to exit');

    assert.equal(namespaced.started.pid, 1);
    assert.equal(echoedAfterStop, 'still flowing');
    assert.equal(echoEnd.endedBy, 'end');
    assert.equal(code, 0);
    assert.equal(drainedSum(namespaced.lines(), 'finished'), 1, 'connections finished, summed over workers');
    assert.ok(namespaced.lines().some((line) => line.msg === 'rsp stopped'), namespaced.stdout());
  });
});
