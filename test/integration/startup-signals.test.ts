// Signals that arrive while the workers are still starting: a worker that gets a
// message before its listener exists must still end up serving (SIGHUP) or stopped
// (SIGTERM), not stuck.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, test, type TestContext } from 'node:test';
import { startNamedBackend } from '../helpers/health.js';
import { mainScript, repoRoot, writeConfigFile, type LogLine } from '../helpers/rsp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const WORKERS = 4;

interface Launched {
  readonly child: ChildProcess;
  lines(): LogLine[];
  readonly exited: Promise<number | null>;
}

/** Starts rsp without waiting for it to start, so a test can signal it during start-up. */
function launch(t: TestContext, config: string): Launched {
  const file = writeConfigFile(config);
  t.after(() => file.remove());
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [mainScript, '--workers', String(WORKERS), '--log-level', 'debug', file.path], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let buffered = '';
  const parsed: LogLine[] = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const complete = buffered.split('\n');
    buffered = complete.pop() ?? '';
    for (const line of complete) {
      if (line.startsWith('{')) parsed.push(JSON.parse(line) as LogLine);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, lines: () => parsed, exited };
}

function configFor(backend: string): string {
  return `workers = ${WORKERS}\nlisten = "127.0.0.1:0"\nmetrics = false\nbackends = { "${backend}" }\ntimeouts = { drain = 1 }\n`;
}

describe('signals during start-up', () => {
  test('SIGHUPs still let every worker listen', async (t) => {
    const backend = await startNamedBackend('backend');
    t.after(() => backend.close());
    const rsp = launch(t, configFor(backend.address));
    await waitFor('"starting workers"', () => rsp.lines().find((line) => line.msg === 'starting workers'), 10_000);

    // In-place reloads while the workers start: an update can reach a worker
    // before its config does.
    const deadline = Date.now() + 3_000;
    while (Date.now() < deadline && !rsp.lines().some((line) => line.msg === 'rsp started')) {
      rsp.child.kill('SIGHUP');
      await sleep(2);
    }
    const started = await waitFor('"rsp started"', () => rsp.lines().find((line) => line.msg === 'rsp started'), 10_000);
    const listening = rsp.lines().filter((line) => line.msg === 'worker listening');

    assert.equal(started.workers, WORKERS);
    assert.equal(listening.length, WORKERS);
    rsp.child.kill('SIGTERM');
    assert.equal(await rsp.exited, 0);
  });

  test('SIGTERM stops starting workers at once', async (t) => {
    const backend = await startNamedBackend('backend');
    t.after(() => backend.close());
    const rsp = launch(t, configFor(backend.address));
    await waitFor('"starting workers"', () => rsp.lines().find((line) => line.msg === 'starting workers'), 10_000);

    const signalledAt = Date.now();
    rsp.child.kill('SIGTERM');
    const code = await rsp.exited;
    const elapsedMs = Date.now() - signalledAt;

    assert.equal(code, 0);
    // A worker that missed the stop message would serve until it is killed at drain + 5 s.
    assert.ok(elapsedMs < 4_000, `rsp exited ${elapsedMs} ms after SIGTERM; the drain is 1 s`);
    assert.deepEqual(
      rsp.lines().filter((line) => line.msg === 'worker did not exit after the drain deadline; killing it'),
      [],
    );
    assert.equal(rsp.lines().some((line) => line.msg === 'rsp started'), false);
  });
});
