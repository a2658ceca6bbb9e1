// Reading a Lua table of named settings against a table of known keys, each
// with its own reader. Every level of the config (top level, a service, a
// backend, timeouts) is one such table, so a new setting is one new entry.
import type { IssueList } from './issue-list.js';
import { isLuaIdentifier, isLuaList, LuaRecord, quoteLuaString, type LuaValue } from './lua-value.js';
import { findNearestKey } from './nearest-key.js';

/**
 * Checks and converts the value of one setting. On a problem it adds an issue
 * at `path` and returns undefined, so the caller can go on with the other settings.
 */
export type Reader<T> = (value: LuaValue, path: string, issues: IssueList) => T | undefined;

/** The known keys of one level, each with the reader of its value. */
export type ReaderTable = { readonly [key: string]: Reader<unknown> };

/** Converted values of the settings that were set and valid; the others are absent. */
export type FieldValues<R extends ReaderTable> = { -readonly [K in keyof R]?: R[K] extends Reader<infer T> ? T : never };

export interface ReadFieldsOptions {
  /** Advice for an unknown key with no close known key; by default the known keys are listed. */
  readonly unknownKeyAdvice?: (path: string) => string;
}

/**
 * Runs the reader of each key of `record` that has an entry in `readers`. Every
 * other key gets an issue, which suggests the nearest known key when one is close.
 */
export function readFields<R extends ReaderTable>(
  record: LuaRecord,
  readers: R,
  path: string,
  issues: IssueList,
  options: ReadFieldsOptions = {},
): FieldValues<R> {
  const knownKeys = Object.keys(readers);
  const values: { [key: string]: unknown } = {};
  for (const [key, value] of record.fields) {
    const keyPath = fieldPath(path, key);
    const reader = Object.hasOwn(readers, key) ? readers[key] : undefined;
    if (reader === undefined) {
      reportUnknownKey(keyPath, findNearestKey(key, knownKeys), knownKeys, issues, options);
      continue;
    }
    const converted = reader(value, keyPath, issues);
    if (converted !== undefined) values[key] = converted;
  }
  for (const key of record.otherKeys) {
    reportUnknownKey(`${path}${key}`, undefined, knownKeys, issues, options);
  }
  return values as FieldValues<R>;
}

/**
 * Returns `value` as a record of named settings, or adds an issue and returns
 * undefined. The empty table counts as a record with no settings.
 */
export function readRecord(value: LuaValue, path: string, issues: IssueList, expectation: string): LuaRecord | undefined {
  if (value instanceof LuaRecord) return value;
  if (isLuaList(value) && value.length === 0) return new LuaRecord(new Map(), []);
  issues.expected(path, expectation, value);
  return undefined;
}

/** Path of a named field in Lua syntax: `timeouts.connect`, or `services["my web"]` for a key that is not an identifier. */
export function fieldPath(parent: string, key: string): string {
  if (isLuaIdentifier(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${quoteLuaString(key)}]`;
}

/** Path of a list item in Lua syntax, 1-based: `backends[2]` for index 1. */
export function itemPath(parent: string, index: number): string {
  return `${parent}[${index + 1}]`;
}

function reportUnknownKey(
  path: string,
  nearest: string | undefined,
  knownKeys: readonly string[],
  issues: IssueList,
  options: ReadFieldsOptions,
): void {
  let advice: string;
  if (nearest !== undefined) advice = `did you mean "${nearest}"?`;
  else if (options.unknownKeyAdvice !== undefined) advice = options.unknownKeyAdvice(path);
  else advice = `the known settings here are ${knownKeys.join(', ')}`;
  issues.add(path, `is not a known setting; ${advice}`);
}
