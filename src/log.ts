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
