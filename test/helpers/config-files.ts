// Config files for unit tests of the loader: a temporary directory per test file
// and the assertions the config tests share.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { Config, ServiceConfig } from '../../src/config/types.js';
import { ConfigError, ErrorCodes } from '../../src/errors.js';

export interface ConfigFiles {
  /** Writes `text` to a new file in the test directory and returns its path. */
  writeConfig(text: string): string;
  /** Writes and loads `text`. */
  load(text: string): Config;
  /**
   * Loads `text` and asserts that it fails validation with exactly `expected`
   * messages, in order. Each expected line is given without the `<file>: ` prefix.
   */
  assertIssues(text: string, expected: readonly string[]): void;
}

/** Registers hooks that create a temporary directory before the file's tests and remove it after them. */
export function useConfigFiles(prefix: string): ConfigFiles {
  let directory = '';
  let fileCount = 0;
  before(() => {
    directory = mkdtempSync(join(tmpdir(), prefix));
  });
  after(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  const writeConfig = (text: string): string => {
    fileCount += 1;
    const file = join(directory, `site-${fileCount}.lua`);
    writeFileSync(file, text);
    return file;
  };

  const assertIssues = (text: string, expected: readonly string[]): void => {
    const file = writeConfig(text);
    let caught: unknown;
    try {
      loadConfig(file);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
    assert.equal(caught.code, ErrorCodes.CONFIG_INVALID);
    assert.deepEqual(
      caught.issues.map((issue) => issue.message),
      expected.map((line) => `${file}: ${line}`),
    );
    assert.equal(caught.message, expected.map((line) => `${file}: ${line}`).join('\n'));
  };

  return { writeConfig, load: (text) => loadConfig(writeConfig(text)), assertIssues };
}

/** Returns the service called `name`, failing the test when there is none. */
export function serviceNamed(config: Config, name: string): ServiceConfig {
  const found = config.services.find((candidate) => candidate.name === name);
  assert.ok(found, `no service named ${name} in ${config.services.map((candidate) => candidate.name).join(', ')}`);
  return found;
}
