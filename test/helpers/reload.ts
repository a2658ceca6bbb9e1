// Config text and reload steps for the operations tests: configs with the metrics
// endpoint and the access log, and SIGHUP reloads that wait for rsp's verdict.
import { writeFileSync } from 'node:fs';
import { luaString, type TimeoutsSeconds } from './config.js';
import type { LogLine, RspProcess } from './rsp.js';
import { waitFor } from './wait.js';

export interface OperationsConfigOptions {
  /** Backend addresses, each with weight 1. */
  readonly backends: readonly string[];
  /** Defaults to `127.0.0.1:0`. */
  readonly listen?: string;
  /** `true` (the default) serves metrics on `127.0.0.1:0`, and `false` turns them off. */
  readonly metrics?: boolean;
  /** Defaults to false. */
  readonly accessLog?: boolean;
  /** Timeouts in seconds. Unset ones default to connect 2, idle 60 and drain 5. */
  readonly timeouts?: Partial<TimeoutsSeconds>;
}

/** Returns the Lua text of one top-level service (named `default` by rsp). */
export function operationsConfig(options: OperationsConfigOptions): string {
  const timeouts = { connect: 2, idle: 60, drain: 5, ...options.timeouts };
  return [
    `listen = ${luaString(options.listen ?? '127.0.0.1:0')}`,
    `backends = { ${options.backends.map(luaString).join(', ')} }`,
    `timeouts = { connect = ${timeouts.connect}, idle = ${timeouts.idle}, drain = ${timeouts.drain} }`,
    `metrics = ${options.metrics === false ? 'false' : luaString('127.0.0.1:0')}`,
    `access_log = ${options.accessLog === true ? 'true' : 'false'}`,
    '',
  ].join('\n');
}

/** Returns true when `line` is the primary's verdict on a reload: `reload complete...` or `reload failed...`. */
export function isReloadResult(line: LogLine): boolean {
  const msg = line.msg ?? '';
  return line.proc === 'primary' && (msg.startsWith('reload complete') || msg.startsWith('reload failed'));
}

/**
 * Rewrites rsp's config file with `config`, sends SIGHUP, and resolves with the
 * next reload verdict line, whether it reports success or failure.
 */
export async function reloadRsp(rsp: RspProcess, config: string, timeoutMs = 10_000): Promise<LogLine> {
  const earlier = rsp.lines().filter(isReloadResult).length;
  writeFileSync(rsp.configFile, config);
  process.kill(rsp.pid, 'SIGHUP');
  return waitFor(
    `reload verdict number ${earlier + 1}`,
    () => rsp.lines().filter(isReloadResult)[earlier],
    timeoutMs,
    () => rsp.stdout().slice(-2_000),
  );
}
