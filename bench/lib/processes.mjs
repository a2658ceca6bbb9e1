// Child processes of the harness: start, wait for, stop, and clean up on exit.
//
// Every long-running child is spawned in its own process group (detached). A signal
// to the negative PID then also reaches its workers (rsp's cluster workers, nginx's
// worker processes). A Ctrl-C in the terminal reaches only the harness, which then
// stops the children in order.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { clearTimeout, setTimeout } from 'node:timers';

/** Children still running, by PID. */
const running = new Map();

/**
 * Starts a long-running child in its own process group. Its stdout and stderr go to
 * `logFile`; `onLine` receives each stdout line as well.
 */
export function startProcess(name, command, args, { env = process.env, logFile, onLine } = {}) {
  const child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = logFile === undefined ? undefined : createWriteStream(logFile);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // 'close' comes after 'exit' once stdout and stderr are read to the end.
  const closed = new Promise((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const spawned = new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });

  let pending = '';
  child.stdout.on('data', (chunk) => {
    log?.write(chunk);
    if (onLine === undefined) return;
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  child.stderr.on('data', (chunk) => log?.write(chunk));

  const handle = { name, child, exited, closed, spawned, exitStatus: undefined };
  exited.then((status) => {
    handle.exitStatus = status;
    running.delete(child.pid);
    log?.end();
  });
  if (child.pid !== undefined) running.set(child.pid, handle);
  return handle;
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    // ESRCH: the whole group has exited already.
    if (error.code !== 'ESRCH') throw error;
  }
}

/**
 * Stops a child started by startProcess: `signal` to its process group, then SIGKILL
 * to the group when the child has not exited after `graceMs`. Members of the group
 * that outlive the group leader get SIGKILL as well.
 */
export async function stopProcess(handle, { signal = 'SIGTERM', graceMs = 5000 } = {}) {
  const pid = handle.child.pid;
  if (pid === undefined) return;
  if (handle.exitStatus === undefined) {
    signalGroup(pid, signal);
    const timer = sleep(graceMs).then(() => 'timeout');
    if ((await Promise.race([handle.exited, timer])) === 'timeout') {
      signalGroup(pid, 'SIGKILL');
      await handle.exited;
    }
  }
  signalGroup(pid, 'SIGKILL');
}

/** Stops every child still running, in the reverse order of their start. */
export async function stopAll(options) {
  const handles = [...running.values()].reverse();
  for (const handle of handles) await stopProcess(handle, options);
}

/** Sends SIGKILL to the process group of every child still running; safe in an 'exit' handler. */
export function killAllNow() {
  for (const pid of running.keys()) signalGroup(pid, 'SIGKILL');
}

/**
 * Runs a command to completion and returns its exit code and output. The command is
 * tracked like a long-running child, so an interrupted harness stops it too, and it
 * gets SIGKILL after `timeoutMs`.
 */
export async function runCommand(command, args, { timeoutMs = 60_000, env } = {}) {
  const handle = startProcess(command, command, args, { env });
  let stdout = '';
  let stderr = '';
  handle.child.stdout.on('data', (chunk) => (stdout += chunk.toString('utf8')));
  handle.child.stderr.on('data', (chunk) => (stderr += chunk.toString('utf8')));
  try {
    await handle.spawned;
  } catch (error) {
    return { code: null, signal: null, stdout, stderr: error.message, timedOut: false };
  }

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    signalGroup(handle.child.pid, 'SIGKILL');
  }, timeoutMs);
  const status = await handle.closed;
  clearTimeout(timer);
  return { ...status, stdout, stderr, timedOut };
}

/** Resolves once a TCP connect to host:port succeeds; rejects after `timeoutMs` or when `handle` exits. */
export async function waitForPort(host, port, { timeoutMs = 10_000, handle } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (handle?.exitStatus !== undefined) {
      throw new Error(`${handle.name} exited (${JSON.stringify(handle.exitStatus)}) before listening on ${host}:${port}`);
    }
    const connected = await new Promise((resolve) => {
      const socket = createConnection({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (connected) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${host}:${port} to accept connections`);
    await sleep(50);
  }
}

function readProcFile(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // The process exited between the directory listing and the read.
    return undefined;
  }
}

/** Returns `rootPid` and all its descendants, found through the parent PID in /proc/<pid>/stat. */
export function processTreePids(rootPid) {
  const childrenByParent = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcFile(`/proc/${entry}/stat`);
    if (stat === undefined) continue;
    // The command name in brackets may contain spaces, so the fields are counted
    // from the last closing bracket: state, then the parent PID.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const parent = Number(fields[1]);
    if (!childrenByParent.has(parent)) childrenByParent.set(parent, []);
    childrenByParent.get(parent).push(Number(entry));
  }

  const tree = [rootPid];
  for (let i = 0; i < tree.length; i++) tree.push(...(childrenByParent.get(tree[i]) ?? []));
  return tree;
}

/** Returns the summed VmRSS in bytes over `rootPid` and its descendants. */
export function treeRssBytes(rootPid) {
  let total = 0;
  for (const pid of processTreePids(rootPid)) {
    const match = readProcFile(`/proc/${pid}/status`)?.match(/^VmRSS:\s+(\d+) kB$/m);
    if (match) total += Number(match[1]) * 1024;
  }
  return total;
}

/** Returns the soft and hard limits on open files of this process. */
export function openFileLimits() {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((candidate) => candidate.startsWith('Max open files'));
  const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/);
  const parse = (value) => (value === 'unlimited' ? Infinity : Number(value));
  return { soft: parse(soft), hard: parse(hard) };
}
