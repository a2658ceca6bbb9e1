// Collects the problems found in one config file, so validation can go on after
// the first one and report them all together.
import type { ConfigIssue } from '../errors.js';
import { formatLuaValue, type LuaValue } from './lua-value.js';

/** Issues of one config file. Every message starts with the file path as the operator gave it. */
export class IssueList {
  readonly #issues: ConfigIssue[] = [];

  constructor(readonly file: string) {}

  get issues(): readonly ConfigIssue[] {
    return this.#issues;
  }

  /** Adds `<file>: <path> <text>`, or `<file>: <text>` for a file-level problem (empty path). */
  add(path: string, text: string): void {
    const message = path === '' ? `${this.file}: ${text}` : `${this.file}: ${path} ${text}`;
    this.#issues.push({ file: this.file, path, message });
  }

  /** Adds `<path> <problem>, got <value>`, where `problem` reads like `must be a positive integer`. */
  invalid(path: string, problem: string, value: LuaValue): void {
    this.add(path, `${problem}, got ${formatLuaValue(value)}`);
  }

  /** Adds `<path> must be <expectation>, got <value>`. */
  expected(path: string, expectation: string, value: LuaValue): void {
    this.invalid(path, `must be ${expectation}`, value);
  }

  /** Adds `<path> is missing`, for a required setting that is not set. */
  missing(path: string): void {
    this.add(path, 'is missing');
  }
}
