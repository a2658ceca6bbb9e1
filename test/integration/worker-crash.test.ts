// A worker killed from outside is logged and replaced while the others keep serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEchoBackend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { singleServiceConfig } from '../helpers/config.js';
import { childPids, isRunning } from '../helpers/process-tree.js';
import { startRsp } from '../helpers/rsp.js';
import { waitFor } from '../helpers/wait.js';

/** Runs `count` echo exchanges one after another and returns the ones that failed. */
async function failedEchoes(port: number, count: number): Promise<string[]> {
  const failures: string[] = [];
  for (let i = 0; i < count; i++) {
    const message = `echo ${i}`;
    const result = await exchange(port, { send: message, keepData: true, timeoutMs: 5_000 });
    const reply = result.data?.toString('utf8');
    if (result.endedBy !== 'end' || reply !== message) failures.push(`${message}: ${result.endedBy}, ${JSON.stringify(reply)}`);
  }
  return failures;
}

test('killed worker is replaced', async (t) => {
  const echo = await startEchoBackend();
  t.after(() => echo.close());
  const rsp = await startRsp({ config: singleServiceConfig({ backends: [echo.address] }), workers: 2, args: ['--log-level', 'debug'] });
  t.after(() => rsp.stop());

  const workers = childPids(rsp.pid);
  assert.equal(workers.length, 2, `children of the primary: ${workers.join(', ')}`);
  const victim = workers[0] as number;
  const survivor = workers[1] as number;

  process.kill(victim, 'SIGKILL');
  const exitLine = await rsp.waitForLine(
    (line) => line.proc === 'primary' && /exit/i.test(line.msg ?? '') && JSON.stringify(line).includes(String(victim)),
    10_000,
  );
  assert.match(JSON.stringify(exitLine), /SIGKILL/);

  // The surviving worker serves while the replacement starts.
  assert.deepEqual(await failedEchoes(rsp.port, 5), []);

  const replaced = await waitFor(
    'a replacement worker',
    () => {
      const current = childPids(rsp.pid);
      return current.length === 2 && !current.includes(victim) ? current : undefined;
    },
    10_000,
    () => `children: ${childPids(rsp.pid).join(', ')}`,
  );
  assert.ok(replaced.includes(survivor), `the surviving worker ${survivor} is gone: ${replaced.join(', ')}`);
  assert.equal(isRunning(victim), false);
  const replacement = replaced.find((pid) => pid !== survivor) as number;

  // At debug level every worker logs each connection, so a line from the replacement's
  // PID shows that it accepts connections too.
  const failures: string[] = [];
  await waitFor(
    'the replacement worker to serve a connection',
    async () => {
      failures.push(...(await failedEchoes(rsp.port, 1)));
      return rsp.lines().some((line) => line.pid === replacement && /connection/i.test(line.msg ?? ''));
    },
    10_000,
  );
  failures.push(...(await failedEchoes(rsp.port, 10)));
  assert.deepEqual(failures, []);
  assert.equal(rsp.process.exitCode, null);
});
