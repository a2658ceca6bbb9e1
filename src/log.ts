// The pino root logger. Each process logs JSON lines on stdout with an ISO
// timestamp, a level label and `proc` (`primary` or `worker`, plus the worker id).
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export interface ProcessIdentity {
  readonly proc: 'primary' | 'worker';
  readonly worker?: number;
}

export function createLogger(identity: ProcessIdentity, level: LevelWithSilent = 'info'): Logger {
  return pino({
    level,
    base: { ...identity, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
    },
  });
}

/**
 * Limits how often one kind of repeated event is logged: at most `burst` lines per
 * key in each `intervalMs` window. The first line after a window with suppressed
 * lines carries their count as `suppressed`, so no event goes unmentioned.
 */
export class LogLimiter {
  private readonly windows = new Map<string, { startedAt: number; logged: number; suppressed: number }>();

  constructor(
    private readonly burst = 5,
    private readonly intervalMs = 10_000,
  ) {}

  /** Returns undefined when this event must be dropped, else the number of events dropped before it. */
  admit(key: string, now = Date.now()): number | undefined {
    let window = this.windows.get(key);
    if (window === undefined || now - window.startedAt >= this.intervalMs) {
      const suppressed = window?.suppressed ?? 0;
      window = { startedAt: now, logged: 0, suppressed: 0 };
      this.windows.set(key, window);
      if (this.windows.size > 10_000) this.windows.clear();
      window.logged = 1;
      return suppressed;
    }
    if (window.logged < this.burst) {
      window.logged++;
      return 0;
    }
    window.suppressed++;
    return undefined;
  }
}
