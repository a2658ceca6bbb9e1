// loadConfig: read a Lua config file, evaluate it in the sandbox, validate the
// globals it set and freeze the result. Start-up, --check and reload all call it.
import { readFileSync } from 'node:fs';
import { ConfigError, ErrorCodes } from '../errors.js';
import { DEFAULT_INSTRUCTION_BUDGET, runConfigChunk } from './lua.js';
import type { Config } from './types.js';
import { validateConfig } from './validate.js';

export interface LoadOptions {
  /**
   * Maximum number of Lua VM instructions the config chunk may run. The default,
   * `DEFAULT_INSTRUCTION_BUDGET` (2 million), stops an endless loop within a
   * few seconds and leaves ample room for loops over thousands of backends.
   */
  readonly instructionBudget?: number;
}

/**
 * Loads and validates a Lua config file.
 *
 * @param file Path of the config file; messages show it as given.
 * @returns the validated config, deep-frozen.
 * @throws ConfigError with one of these codes:
 *   - `RSP_ERR_CONFIG_READ`: the file cannot be read.
 *   - `RSP_ERR_CONFIG_LUA`: the chunk has a syntax error or raised an error.
 *   - `RSP_ERR_CONFIG_BUDGET`: the chunk ran out of instructions.
 *   - `RSP_ERR_CONFIG_INVALID`: the settings are invalid, and `issues` lists every problem.
 * @throws RangeError when `options.instructionBudget` is not a positive integer.
 */
export function loadConfig(file: string, options: LoadOptions = {}): Config {
  const budget = options.instructionBudget ?? DEFAULT_INSTRUCTION_BUDGET;
  if (!Number.isSafeInteger(budget) || budget <= 0) {
    throw new RangeError(`instructionBudget must be a positive integer, got ${budget}`);
  }

  const source = readSource(file);
  const chunk = runConfigChunk(source, file, budget);
  return deepFreeze(validateConfig(file, chunk));
}

/** Reads the file as bytes, without a leading UTF-8 byte order mark (which Lua's own file loader skips too). */
function readSource(file: string): Uint8Array {
  try {
    const buffer = readFileSync(file);
    const start = buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf ? 3 : 0;
    return new Uint8Array(buffer.buffer, buffer.byteOffset + start, buffer.byteLength - start);
  } catch (error) {
    const message = `failed to read config file ${file}: ${describeReadError(error)}`;
    throw new ConfigError(ErrorCodes.CONFIG_READ, [{ file, path: '', message }], { cause: error });
  }
}

/** `ENOENT: no such file or directory`: the code and reason of a Node.js system error, without the path it repeats. */
function describeReadError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const match = /^([A-Z0-9_]+: [^,]+)/.exec(error.message);
  return match?.[1] ?? error.message;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
