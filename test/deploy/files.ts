// Readers for the deployment files (Dockerfile, config/container.lua, deploy/), shared
// by the deploy-* unit and integration tests.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';

/** The repository root, computed from dist/test/deploy/files.js. */
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

export function repoPath(relativePath: string): string {
  return join(repoRoot, relativePath);
}

export function readRepoFile(relativePath: string): string {
  return readFileSync(repoPath(relativePath), 'utf8');
}

/**
 * Parses every YAML document of a repository file into plain values.
 * Throws with the file name and the parser's messages on a syntax error or warning.
 */
export function readYamlDocuments(relativePath: string): unknown[] {
  const documents = parseAllDocuments(readRepoFile(relativePath));
  const parsed: unknown[] = [];
  for (const document of documents) {
    const problems = [...document.errors, ...document.warnings];
    if (problems.length > 0) {
      throw new Error(`${relativePath}: ${problems.map((problem) => problem.message).join('; ')}`);
    }
    parsed.push(document.toJS());
  }
  return parsed;
}

/**
 * Loads Lua config text through rsp's loader (the code behind `--check`) from a
 * temporary file. `env` sets variables for `os.getenv` during the load, and the
 * previous values come back afterwards.
 */
export function loadLuaConfig(text: string, env: Readonly<Record<string, string>> = {}): Config {
  const directory = mkdtempSync(join(tmpdir(), 'rsp-deploy-config-'));
  const saved = new Map(Object.keys(env).map((name) => [name, process.env[name]]));
  try {
    Object.assign(process.env, env);
    const file = join(directory, 'site.lua');
    writeFileSync(file, text);
    return loadConfig(file);
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(directory, { recursive: true, force: true });
  }
}

/** One PromQL query of the dashboard, with the title of its panel. */
export interface DashboardQuery {
  readonly panel: string;
  readonly expr: string;
}

interface DashboardPanel {
  readonly title?: string;
  readonly targets?: readonly { readonly expr?: string }[];
  readonly panels?: readonly DashboardPanel[];
}

/** Returns the `expr` of every target of every panel, including panels inside collapsed rows. */
export function dashboardQueries(dashboard: { readonly panels?: readonly DashboardPanel[] }): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  const visit = (panels: readonly DashboardPanel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr !== undefined) queries.push({ panel: panel.title ?? '(untitled)', expr: target.expr });
      }
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard.panels ?? []);
  return queries;
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan']);

/**
 * Returns the metric names a PromQL expression selects. String literals, label
 * matchers, range durations and grouping label lists are removed first; of the
 * remaining identifiers, function calls and keywords are not metric names.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const after = stripped.slice((match.index ?? 0) + name.length);
    if (/^\s*\(/.test(after) || PROMQL_KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}
