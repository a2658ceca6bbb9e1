// Reads the rsp process tree from /proc (Linux only): child PIDs and resident memory.
import { readFileSync, readdirSync } from 'node:fs';

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // The process exited between listing and reading.
    return undefined;
  }
}

/** Returns the PIDs of the direct children of `pid`, from every thread's `children` file. */
export function childPids(pid: number): number[] {
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children = new Set<number>();
  for (const thread of threads) {
    const text = readOrUndefined(`/proc/${pid}/task/${thread}/children`) ?? '';
    for (const field of text.split(/\s+/)) {
      if (field !== '') children.add(Number(field));
    }
  }
  return [...children].sort((a, b) => a - b);
}

/** Returns `pid` followed by all its descendants, parents before children. */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    tree.push(...childPids(tree[i] as number));
  }
  return tree;
}

/** Returns the resident set size of one process in bytes, or 0 when it has exited. */
export function rssBytes(pid: number): number {
  const status = readOrUndefined(`/proc/${pid}/status`);
  const match = status?.match(/^VmRSS:\s+(\d+) kB$/m);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Returns the summed resident set size in bytes of `pid` and all its descendants. */
export function treeRssBytes(pid: number): number {
  return processTree(pid).reduce((sum, member) => sum + rssBytes(member), 0);
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
