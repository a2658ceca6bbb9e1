// Benchmark harness: rsp against HAProxy, nginx stream, a plain Node pipe proxy and
// no proxy at all, in five scenarios. See docs/benchmarks.md.
//   node bench/run.mjs [--quick] [--targets a,b] [--scenarios A,B] [--repeat n]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startBackends } from './lib/backends.mjs';
import { killAllNow, openFileLimits, runCommand, stopAll, stopProcess } from './lib/processes.mjs';
import { computeRatios, renderMarkdown, renderRatioChart } from './lib/report.mjs';
import { SCENARIOS, SETTINGS } from './lib/scenarios.mjs';
import { ALL_TARGETS, DEFAULT_TARGETS } from './lib/targets.mjs';
import { ensureCommand, machineFacts } from './lib/tools.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, '..');

const USAGE = `usage: node bench/run.mjs [options]    (or: npm run bench -- [options])

  --quick               short runs and smaller transfers, for development (about 3 minutes)
  --targets <list>      comma-separated targets (default: ${DEFAULT_TARGETS.join(',')})
                        known: ${ALL_TARGETS.map((target) => target.name).join(', ')}
  --scenarios <list>    comma-separated scenarios out of A,B,C,D,E (default: all)
  --repeat <n>          measure each target n times per scenario, in rounds over the targets,
                        and keep the median (default: 1)
  --backend <kind>      nginx (default) or node
  --node <path>         run rsp and the Node.js floor proxies with this node binary
                        (default: the one that runs the harness), to compare runtimes
  --no-install          never run apt-get for a missing program; skip what needs it
  --results-dir <dir>   where latest.md, <timestamp>.json and the charts go (default: bench/results)
  --chart <file>        also write the ratio chart to this file (docs/benchmarks-ratios.svg for the docs)
  --keep-tmp            keep the temporary folder with configs and logs
  --report <file.json>  measure nothing: render latest.md and the charts again from a saved results file
  -h, --help            print this help`;

function fail(message) {
  console.error(`bench: ${message}`);
  console.error(USAGE);
  process.exit(2);
}

function parseOptions(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        targets: { type: 'string' },
        scenarios: { type: 'string' },
        repeat: { type: 'string', default: '1' },
        backend: { type: 'string', default: 'nginx' },
        node: { type: 'string' },
        'no-install': { type: 'boolean', default: false },
        'results-dir': { type: 'string', default: join(benchDir, 'results') },
        chart: { type: 'string' },
        'keep-tmp': { type: 'boolean', default: false },
        report: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    fail(error.message);
  }
  if (parsed.help) {
    console.log(USAGE);
    process.exit(0);
  }

  const known = new Map(ALL_TARGETS.map((target) => [target.name, target]));
  const targetNames = parsed.targets === undefined ? DEFAULT_TARGETS : parsed.targets.split(',').map((name) => name.trim());
  for (const name of targetNames) {
    if (!known.has(name)) fail(`unknown target "${name}"`);
  }
  const scenarioIds = parsed.scenarios === undefined ? SCENARIOS.map((scenario) => scenario.id) : parsed.scenarios.split(',').map((id) => id.trim().toUpperCase());
  for (const id of scenarioIds) {
    if (!SCENARIOS.some((scenario) => scenario.id === id)) fail(`unknown scenario "${id}"`);
  }
  const repeat = Number(parsed.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 10) fail(`--repeat must be an integer from 1 to 10, got ${parsed.repeat}`);
  if (!['nginx', 'node'].includes(parsed.backend)) fail(`--backend must be nginx or node, got ${parsed.backend}`);

  return {
    mode: parsed.quick ? 'quick' : 'full',
    // Keep the order of ALL_TARGETS and SCENARIOS whatever the order on the command line.
    targets: ALL_TARGETS.filter((target) => targetNames.includes(target.name)),
    scenarios: SCENARIOS.filter((scenario) => scenarioIds.includes(scenario.id)),
    repeat,
    backend: parsed.backend,
    node: parsed.node === undefined ? process.execPath : resolve(parsed.node),
    install: !parsed['no-install'],
    resultsDir: resolve(parsed['results-dir']),
    chart: parsed.chart === undefined ? undefined : resolve(parsed.chart),
    keepTmp: parsed['keep-tmp'],
    report: parsed.report === undefined ? undefined : resolve(parsed.report),
  };
}

const warnings = [];
function warn(message) {
  warnings.push(message);
  console.warn(`warning: ${message}`);
}

/**
 * Returns false, with a warning, when the open-file limit is too low for scenario E.
 * Each idle connection uses two descriptors in the proxy (client and backend side)
 * and one in this process. Node.js raises its own soft limit to the hard limit at
 * start-up and the children inherit it, so in practice the hard limit decides.
 */
function openFileLimitAllowsE(options) {
  const needed = 2 * SETTINGS[options.mode].idleConnections + 1024;
  const limits = openFileLimits();
  if (limits.soft >= needed) return true;
  warn(`skipping scenario E: the open-file limit (soft ${limits.soft}, hard ${limits.hard}) is below the ${needed} it needs; raise it with "ulimit -n ${needed}" before the run (as root when above the hard limit)`);
  return false;
}

function installCleanup(state) {
  process.on('exit', () => {
    killAllNow();
    if (state.tmpDir !== undefined && !state.keepTmp) rmSync(state.tmpDir, { recursive: true, force: true });
  });
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      if (stopping) process.exit(130);
      stopping = true;
      console.error(`\n${signal}: stopping every process the harness started (again to stop at once)`);
      stopAll({ graceMs: 3000 }).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Merges repeated measurements: the median of each number, the last value of anything else, all notes. */
function mergeRepeats(runs) {
  const merged = { ...runs[runs.length - 1] };
  for (const key of Object.keys(merged)) {
    if (typeof merged[key] === 'number') merged[key] = median(runs.map((run) => run[key]));
  }
  const notes = [...new Set(runs.map((run) => run.note).filter((note) => note !== undefined))];
  merged.note = notes.length > 0 ? notes.join('; ') : undefined;
  return merged;
}

function summarize(figures) {
  return Object.entries(figures)
    .filter(([key, value]) => key !== 'note' && (typeof value === 'number' || typeof value === 'string'))
    .map(([key, value]) => `${key} ${typeof value === 'number' ? Number(value.toPrecision(4)) : value}`)
    .join(', ');
}

/**
 * Runs `scenario` once against `target`, on a fresh proxy: memory figures (D, E)
 * measured on a process that already served an earlier repeat would only show
 * what that repeat left unused.
 */
async function measureOnce(target, scenario, settings, context) {
  const started = { ...(await target.start(context)), direct: target.direct === true };
  try {
    return await scenario.run(started, settings, context);
  } finally {
    if (started.handle !== undefined) await stopProcess(started.handle, { graceMs: 5000 });
  }
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  if (options.report !== undefined) {
    const run = JSON.parse(readFileSync(options.report, 'utf8'));
    // Ratios are computed again, so a change in how they are computed applies to old runs too.
    run.ratios = computeRatios(run.results);
    writeReports(run, options, { writeJson: false });
    return;
  }
  if (options.scenarios.some((scenario) => scenario.id === 'E') && !openFileLimitAllowsE(options)) {
    options.scenarios = options.scenarios.filter((scenario) => scenario.id !== 'E');
  }

  const state = { tmpDir: undefined, keepTmp: options.keepTmp };
  installCleanup(state);
  const startedAt = new Date();
  const settings = SETTINGS[options.mode];

  const nodeVersion = await runCommand(options.node, ['--version'], { timeoutMs: 10_000 });
  if (nodeVersion.code !== 0) {
    const reason = nodeVersion.stderr.trim() || `exit code ${nodeVersion.code}`;
    console.error(`bench: "${options.node} --version" failed (${reason}); --node needs the path of a node binary`);
    process.exit(1);
  }

  for (const [command, pkg] of [
    ['wrk', 'wrk'],
    ['curl', 'curl'],
  ]) {
    if ((await ensureCommand(command, pkg, { install: options.install, warn })) === undefined) {
      console.error(`bench: ${command} is required and missing: install the Debian package ${pkg}`);
      process.exit(1);
    }
  }
  if (options.targets.some((target) => target.name === 'haproxy')) {
    await ensureCommand('haproxy', 'haproxy', { install: options.install, warn });
  }
  if (options.backend === 'nginx' || options.targets.some((target) => target.name === 'nginx')) {
    await ensureCommand('nginx', 'nginx-light', { install: options.install, warn });
  }

  state.tmpDir = mkdtempSync(join(os.tmpdir(), 'rsp-bench-'));
  const limits = openFileLimits();
  const context = {
    tmpDir: state.tmpDir,
    rspMain: join(repoRoot, 'dist', 'src', 'main.js'),
    node: options.node,
    maxOpenFiles: Math.min(limits.hard, 65536),
    install: options.install,
    warn,
    backends: [],
  };
  const machine = await machineFacts(repoRoot, { path: options.node, version: nodeVersion.stdout.trim() });
  console.log(`rsp benchmark, ${options.mode} mode, ${machine.cores} cores (${machine.cpuModel}), Node.js ${machine.node}; temporary files in ${state.tmpDir}`);

  const backends = await startBackends({ preferred: options.backend, tmpDir: state.tmpDir, maxOpenFiles: context.maxOpenFiles, warn });
  context.backends = backends.backends;
  console.log(`backends: ${backends.backends.map((backend) => `${backends.kind} on ${backend.port}`).join(', ')}`);

  const targets = [];
  for (const target of options.targets) {
    const skipped = await target.check(context);
    if (skipped !== undefined) warn(`skipping target ${target.name}: ${skipped}`);
    targets.push({ target, skipped });
  }

  const results = {};
  const scenarioDescriptions = {};
  for (const scenario of options.scenarios) {
    scenarioDescriptions[scenario.id] = scenario.describe(settings);
    console.log(`\n== ${scenario.id}: ${scenario.title}: ${scenarioDescriptions[scenario.id]}`);
    results[scenario.id] = {};
    const measured = targets.filter(({ target, skipped }) => skipped === undefined && scenario.appliesTo(target)).map(({ target }) => target);
    const runs = new Map(measured.map((target) => [target.name, []]));
    // Repeats go round the targets, so drift during the scenario (sockets left in
    // TIME_WAIT by B, other load on the machine) reaches every target alike.
    for (let round = 1; round <= options.repeat; round++) {
      for (const target of measured) {
        if (results[scenario.id][target.name] !== undefined) continue;
        try {
          const figures = await measureOnce(target, scenario, settings, context);
          runs.get(target.name).push(figures);
          const label = options.repeat > 1 ? `${target.name} (${round}/${options.repeat})` : target.name;
          console.log(`${scenario.id} ${label.padEnd(12)} ${summarize(figures)}${figures.note === undefined ? '' : ` (${figures.note})`}`);
        } catch (error) {
          results[scenario.id][target.name] = { error: error.message };
          warn(`${scenario.id} ${target.name} failed: ${error.message}`);
        }
      }
    }
    for (const target of measured) {
      if (results[scenario.id][target.name] !== undefined) continue;
      const figures = mergeRepeats(runs.get(target.name));
      results[scenario.id][target.name] = { figures };
      if (options.repeat > 1) console.log(`${scenario.id} ${`${target.name} (median)`.padEnd(12)} ${summarize(figures)}`);
    }
  }

  await stopAll({ graceMs: 5000 });
  const finishedAt = new Date();
  const run = {
    startedAt: startedAt.toISOString().replace(/\.\d+Z$/, 'Z'),
    finishedAt: finishedAt.toISOString().replace(/\.\d+Z$/, 'Z'),
    durationSeconds: Math.round((finishedAt - startedAt) / 1000),
    mode: options.mode,
    repeat: options.repeat,
    settings: { ...settings, bulkSingle: settings.bulkSingle.path, bulkParallel: settings.bulkParallel.path },
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((value) => Math.round(value * 100) / 100) },
    backends: { kind: backends.kind },
    targets: targets.map(({ target, skipped }) => ({ name: target.name, description: target.description, skipped })),
    scenarioDescriptions,
    results,
    warnings,
  };
  run.ratios = computeRatios(results);

  writeReports(run, options, { writeJson: true });
  if (warnings.length > 0) console.log(`${warnings.length} warning(s); see above and in latest.md`);
}

/** Writes latest.md and the charts of `run`, and with `writeJson` its <timestamp>.json file. */
function writeReports(run, options, { writeJson }) {
  const markdown = renderMarkdown(run);
  const chart = renderRatioChart(run);
  const written = [];
  const write = (path, text) => {
    writeFileSync(path, text);
    written.push(path);
  };
  mkdirSync(options.resultsDir, { recursive: true });
  if (writeJson) write(join(options.resultsDir, `${run.startedAt.replace(/:/g, '-')}.json`), `${JSON.stringify(run, null, 2)}\n`);
  write(join(options.resultsDir, 'latest.md'), markdown);
  write(join(options.resultsDir, 'latest-ratios.svg'), chart);
  if (options.chart !== undefined) write(options.chart, chart);
  console.log(`\n${markdown}`);
  console.log(`written: ${written.join(', ')}`);
}

main().then(() => {
  // Exit here so that no leftover socket or timer keeps the harness alive.
  process.exit(0);
}, (error) => {
  console.error(`bench: ${error.stack ?? error.message}`);
  process.exit(1);
});
