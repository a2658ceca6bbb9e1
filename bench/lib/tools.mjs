// External programs the harness drives (nginx, HAProxy, wrk, curl): finding them,
// installing missing ones from Debian's packages, and reading their versions.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { delimiter, join } from 'node:path';
import { runCommand } from './processes.mjs';

/** Loadable module that adds the `stream` block to Debian's nginx builds (1.22 in Debian 12). */
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/** Returns the absolute path of `command` on PATH (plus the sbin folders), or undefined. */
export function which(command) {
  const folders = (process.env.PATH ?? '').split(delimiter).concat(['/usr/local/sbin', '/usr/sbin', '/sbin']);
  for (const folder of folders) {
    if (folder === '') continue;
    const candidate = join(folder, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder.
    }
  }
  return undefined;
}

/**
 * Installs Debian packages with apt-get. Returns true on success. Only root can
 * install; everyone else gets false and a warning from the caller.
 */
export async function aptInstall(packages, warn) {
  if (process.getuid?.() !== 0) {
    warn(`cannot install ${packages.join(' ')}: apt-get needs root`);
    return false;
  }
  console.log(`installing ${packages.join(' ')} with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const result = await runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { timeoutMs: 300_000, env });
  if (result.code !== 0) {
    warn(`apt-get install ${packages.join(' ')} failed (exit ${result.code}): ${result.stderr.trim().split('\n').slice(-3).join(' / ')}`);
    return false;
  }
  return true;
}

/**
 * Returns the path of `command`, installing Debian package `pkg` first when the
 * command is missing and `install` is set. Returns undefined when it stays missing.
 */
export async function ensureCommand(command, pkg, { install, warn }) {
  const found = which(command);
  if (found !== undefined || !install) return found;
  await aptInstall([pkg], warn);
  return which(command);
}

/** Returns true when nginx can load the stream module, installing libnginx-mod-stream if allowed. */
export async function ensureNginxStream({ install, warn }) {
  if (existsSync(NGINX_STREAM_MODULE)) return true;
  const nginx = which('nginx');
  if (nginx !== undefined) {
    const built = await runCommand(nginx, ['-V']);
    // A build configured with plain --with-stream has the module compiled in.
    if (/--with-stream(?!=dynamic)(\s|$)/.test(built.stderr)) return true;
  }
  if (!install) return false;
  await aptInstall(['libnginx-mod-stream'], warn);
  return existsSync(NGINX_STREAM_MODULE);
}

async function firstLine(command, args, stream = 'stdout') {
  const path = which(command);
  if (path === undefined) return undefined;
  const result = await runCommand(path, args, { timeoutMs: 10_000 });
  const text = stream === 'stderr' ? result.stderr : result.stdout;
  return text.trim().split('\n')[0]?.trim();
}

/** Returns "<name> <version>" from a version line, the whole line when `pattern` does not match. */
function shortVersion(line, pattern, name) {
  if (line === undefined) return undefined;
  const match = pattern.exec(line);
  return match === null ? line : `${name} ${match[1]}`;
}

function cpuModel() {
  const line = readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .find((candidate) => candidate.startsWith('model name'));
  return line === undefined ? os.cpus()[0]?.model ?? 'unknown' : line.slice(line.indexOf(':') + 1).trim();
}

/**
 * Collects the facts about this machine and the programs that a result depends on.
 * `node` gives the path and version of the binary that runs rsp and the floor proxies.
 */
export async function machineFacts(repoRoot, node) {
  const gitHead = await runCommand('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const gitStatus = await runCommand('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'src']);
  return {
    cores: os.availableParallelism(),
    cpuModel: cpuModel(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((value) => Math.round(value * 100) / 100),
    node: node.version,
    nodePath: node.path === process.execPath ? undefined : node.path,
    haproxy: shortVersion(await firstLine('haproxy', ['-v']), /^HAProxy version (\S+)/, 'HAProxy'),
    nginx: shortVersion(await firstLine('nginx', ['-v'], 'stderr'), /nginx\/(\S+)/, 'nginx'),
    wrk: shortVersion(await firstLine('wrk', ['-v']), /^wrk (\S+)/, 'wrk'),
    curl: shortVersion(await firstLine('curl', ['--version']), /^curl (\S+)/, 'curl'),
    rspCommit: gitHead.code === 0 ? gitHead.stdout.trim() : undefined,
    rspSourceModified: gitStatus.code === 0 ? gitStatus.stdout.trim() !== '' : undefined,
  };
}
