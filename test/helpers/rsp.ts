// Starts the compiled rsp (dist/src/main.js) as a child process, the way a user
// runs it, and reads its JSON log lines from stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree } from './process-tree.js';

/** The repository root, computed from dist/test/helpers/rsp.js. */
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const mainScript = join(repoRoot, 'dist', 'src', 'main.js');

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export type LogLine = Record<string, unknown> & { msg?: string; level?: string; proc?: string; pid?: number };

/** One service as the primary reports it in the "rsp started" line. */
export interface StartedService {
  readonly name: string;
  readonly listen: string;
  readonly algorithm: string;
  readonly backends: readonly string[];
  readonly dataPath: string;
}

export interface RspProcess {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Listen port of the service named `default`, or of the first service. */
  readonly port: number;
  /** Listen port per service name. */
  readonly ports: Readonly<Record<string, number>>;
  /** The "rsp started" line. */
  readonly started: LogLine;
  /** Path of the Lua config file rsp was started with. */
  readonly configFile: string;
  stdout(): string;
  stderr(): string;
  /** Every stdout line that parsed as JSON, in order. */
  lines(): LogLine[];
  /**
   * Resolves with the first line, past or future, that matches `predicate`.
   * Rejects after `timeoutMs` or when rsp exits first.
   */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /**
   * Sends `signal` (SIGTERM by default) and resolves with the exit code, or null when
   * a signal ended the process. Sends SIGKILL to the whole tree if rsp has not exited
   * after 10 s. Calling it again returns the same promise.
   */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** Lua text of the config file. */
  readonly config: string;
  /** Passed as `--workers`. Default 1, which keeps the tests light on small machines. */
  readonly workers?: number;
  /** Extra arguments placed before the config file. */
  readonly args?: readonly string[];
  /**
   * Sets `accept` ahead of the config. Tests whose steps need the connections
   * spread over the workers in turn use "primary"; the default lets the kernel
   * pick the worker.
   */
  readonly accept?: 'primary' | 'workers';
  /** Variables added to rsp's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Writes `config` to rsp.lua in a new temporary directory. */
export function writeConfigFile(config: string): { path: string; remove(): void } {
  const directory = mkdtempSync(join(tmpdir(), 'rsp-test-'));
  const path = join(directory, 'rsp.lua');
  writeFileSync(path, config);
  return { path, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

function childEnvironment(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  // node --test marks its child processes with this variable, and rsp is not a test file.
  const env = { ...process.env, ...extra };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

/** Returns the port of a listen address such as `127.0.0.1:40123` or `[::1]:40123`. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

function parseLine(text: string): LogLine | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts rsp with `config` and waits for the "rsp started" line. The caller owns the
 * returned process and must call `stop()`.
 *
 * Rejects when that line does not appear within 15 s or rsp exits first, with rsp's
 * stdout and stderr in the message. The process is stopped before the rejection.
 */
export async function startRsp(options: StartOptions): Promise<RspProcess> {
  const configFile = writeConfigFile(options.accept === undefined ? options.config : `accept = "${options.accept}"\n${options.config}`);
  const args = [mainScript, '--workers', String(options.workers ?? 1), ...(options.args ?? []), configFile.path];
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: childEnvironment(options.env), stdio: ['ignore', 'pipe', 'pipe'] });

  let stdoutText = '';
  let stderrText = '';
  let partialLine = '';
  const lines: LogLine[] = [];
  const lineWatchers = new Set<(line: LogLine) => void>();
  let closed = false;
  const closeWatchers = new Set<() => void>();

  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    stdoutText += text;
    const parts = (partialLine + text).split('\n');
    partialLine = parts.pop() ?? '';
    for (const part of parts) {
      const line = parseLine(part);
      if (line === undefined) continue;
      lines.push(line);
      for (const watcher of [...lineWatchers]) watcher(line);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderrText += text;
  });

  // 'close' comes after 'exit' once every holder of the stdout pipe, workers included, has gone.
  const closedPromise = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      closed = true;
      for (const watcher of [...closeWatchers]) watcher();
      resolve(code);
    });
  });
  child.on('error', () => {
    // A spawn failure (checked with ENOENT on Node 20) also emits 'close', which settles every waiter.
  });

  const output = (): string => `\n--- stdout ---\n${stdoutText}\n--- stderr ---\n${stderrText}`;

  const waitForLine = (predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const found = lines.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<LogLine>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        lineWatchers.delete(onLine);
        closeWatchers.delete(onClose);
      };
      const onLine = (line: LogLine): void => {
        if (!predicate(line)) return;
        finish();
        resolve(line);
      };
      const onClose = (): void => {
        finish();
        reject(new Error(`rsp exited with code ${String(child.exitCode)} before the expected log line${output()}`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`No matching rsp log line within ${timeoutMs} ms${output()}`));
      }, timeoutMs);
      if (closed) {
        onClose();
        return;
      }
      lineWatchers.add(onLine);
      closeWatchers.add(onClose);
    });
  };

  let stopping: Promise<number | null> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    stopping ??= (async () => {
      if (!closed && child.pid !== undefined) {
        child.kill(signal);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          closedPromise.then(() => false),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) killTree(child.pid);
      }
      const code = await closedPromise;
      configFile.remove();
      return code;
    })();
    return stopping;
  };

  try {
    const started = await waitForLine((line) => line.msg === 'rsp started', START_TIMEOUT_MS);
    const services = started.services as StartedService[] | undefined;
    if (!Array.isArray(services) || services.length === 0) {
      throw new Error(`The "rsp started" line has no services: ${JSON.stringify(started)}`);
    }
    const ports: Record<string, number> = {};
    for (const service of services) ports[service.name] = portOf(service.listen);
    const port = ports.default ?? (ports[services[0]?.name ?? ''] as number);

    return {
      process: child,
      pid: child.pid as number,
      port,
      ports,
      started,
      configFile: configFile.path,
      stdout: () => stdoutText,
      stderr: () => stderrText,
      lines: () => [...lines],
      waitForLine,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Sends SIGKILL to `pid` and every descendant, children first. */
function killTree(pid: number): void {
  for (const member of processTree(pid).reverse()) {
    try {
      process.kill(member, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

export interface RunResult {
  /** Exit code, or null when a signal ended the process. */
  readonly code: number | null;
  /** Whether the timeout killed the process. */
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Lua text written to a temporary file whose path is appended to `args`. */
  readonly config?: string;
  /** Milliseconds after which the process tree is killed. Default 15 s. */
  readonly timeoutMs?: number;
}

/** Runs rsp once with `args` (for `--check`, `--help`, usage errors or start-up failures) and collects its output. */
export async function runRsp(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const configFile = options.config === undefined ? undefined : writeConfigFile(options.config);
  const fullArgs = [mainScript, ...args, ...(configFile === undefined ? [] : [configFile.path])];
  const child = spawn(process.execPath, fullArgs, { cwd: repoRoot, env: childEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });

  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) killTree(child.pid);
  }, options.timeoutMs ?? START_TIMEOUT_MS);
  try {
    const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
    return { code, timedOut, stdout, stderr };
  } finally {
    clearTimeout(timer);
    configFile?.remove();
  }
}
