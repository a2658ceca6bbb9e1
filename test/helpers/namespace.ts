// Starts rsp as PID 1 of a new PID namespace with util-linux `unshare`, the way a
// container runtime starts its entry point (Linux only, needs root).
import { spawn, type ChildProcess } from 'node:child_process';
import { childPids } from './process-tree.js';
import { mainScript, portOf, repoRoot, writeConfigFile, type LogLine, type StartedService } from './rsp.js';
import { waitFor } from './wait.js';

/** Thrown when `unshare` cannot create the namespace, so a test can skip with the reason. */
export class NamespaceUnavailableError extends Error {
  override readonly name = 'NamespaceUnavailableError';
}

export interface NamespacedRsp {
  /** The `unshare` process, parent of rsp. */
  readonly unshare: ChildProcess;
  /** rsp's PID as seen from this test's namespace. */
  readonly pid: number;
  readonly port: number;
  /** The "rsp started" line. Its `pid` is rsp's PID inside the namespace. */
  readonly started: LogLine;
  lines(): LogLine[];
  stdout(): string;
  /** Resolves with unshare's exit code once it and rsp have exited. */
  readonly exited: Promise<number | null>;
  /** Sends SIGKILL to rsp, which ends every process of the namespace, and to unshare, then waits for unshare to exit. Idempotent. */
  kill(): Promise<void>;
}

/**
 * Runs `unshare --pid --fork --mount-proc node dist/src/main.js --workers 1 <config>`
 * and waits for the "rsp started" line. Rejects with NamespaceUnavailableError when
 * unshare exits before rsp starts and its stderr names unshare.
 */
export async function startRspAsPid1(config: string): Promise<NamespacedRsp> {
  const configFile = writeConfigFile(config);
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const unshare = spawn(
    'unshare',
    ['--pid', '--fork', '--mount-proc', process.execPath, mainScript, '--workers', '1', configFile.path],
    { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );

  let stdout = '';
  let stderr = '';
  let closed = false;
  const lines: LogLine[] = [];
  let partial = '';
  unshare.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as LogLine);
      } catch {
        // Not a log line.
      }
    }
  });
  unshare.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  unshare.on('error', (error) => (stderr += `spawn failed: ${error.message}`));
  const exited = new Promise<number | null>((resolve) =>
    unshare.on('close', (code) => {
      closed = true;
      configFile.remove();
      resolve(code);
    }),
  );

  const kill = async (): Promise<void> => {
    // rsp, unshare's only child, is PID 1 of the namespace, so SIGKILL to it ends the namespace's other processes too.
    const pids = unshare.pid === undefined ? [] : [...childPids(unshare.pid), unshare.pid];
    for (const pid of pids) {
      if (closed) break;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await exited;
  };

  let started: LogLine | 'closed';
  try {
    started = await waitFor('the "rsp started" line', () => lines.find((line) => line.msg === 'rsp started') ?? (closed ? 'closed' : undefined), 15_000);
  } catch (error) {
    await kill();
    throw error;
  }
  if (started === 'closed') {
    const output = `stdout: ${stdout}\nstderr: ${stderr}`;
    if (/unshare/.test(stderr)) throw new NamespaceUnavailableError(stderr.trim());
    throw new Error(`rsp exited before it started\n${output}`);
  }

  const rspPid = childPids(unshare.pid as number)[0];
  if (rspPid === undefined) {
    await kill();
    throw new Error(`unshare (PID ${String(unshare.pid)}) has no child process`);
  }
  const services = started.services as StartedService[];
  return {
    unshare,
    pid: rspPid,
    port: portOf(services[0]?.listen ?? ''),
    started,
    lines: () => [...lines],
    stdout: () => stdout,
    exited,
    kill,
  };
}
