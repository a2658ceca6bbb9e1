// Turns the figures of a run into ratios, a markdown report and an SVG chart.
import { METRICS, SCENARIOS } from './scenarios.mjs';
import { REFERENCE_TARGETS } from './targets.mjs';

/**
 * Returns, for each metric, the best figure of the reference targets (HAProxy,
 * nginx) and each target's ratio to it: figure ÷ best, where best is raised to the
 * metric's referenceFloor. A ratio is missing when no reference target has a
 * positive figure.
 */
export function computeRatios(results) {
  const ratios = {};
  for (const metric of METRICS) {
    const byTarget = results[metric.scenario] ?? {};
    const references = REFERENCE_TARGETS.map((name) => ({ name, value: byTarget[name]?.figures?.[metric.key] })).filter(
      (entry) => typeof entry.value === 'number' && entry.value > 0,
    );
    if (references.length === 0) continue;
    const best = references.reduce((a, b) => ((metric.better === 'higher' ? b.value > a.value : b.value < a.value) ? b : a));
    const reference = Math.max(best.value, metric.referenceFloor ?? 0);
    const perTarget = {};
    for (const [target, result] of Object.entries(byTarget)) {
      const value = result.figures?.[metric.key];
      if (typeof value === 'number') perTarget[target] = value / reference;
    }
    ratios[metric.key] = { best: best.name, bestValue: best.value, reference, perTarget };
  }
  return ratios;
}

/** Returns 'meets', 'misses' or undefined (no goal, or no figure to judge). */
export function judgeGoal(metric, value, ratio) {
  const goal = metric.goal;
  if (goal === undefined || typeof value !== 'number') return undefined;
  if (goal.max !== undefined) return value <= goal.max ? 'meets' : 'misses';
  if (ratio === undefined) return undefined;
  if (goal.minRatio !== undefined) return ratio >= goal.minRatio ? 'meets' : 'misses';
  return ratio <= goal.maxRatio ? 'meets' : 'misses';
}

export function describeGoal(metric) {
  const goal = metric.goal;
  if (goal === undefined) return '';
  if (goal.max !== undefined) return `≤ ${goal.max} ${metric.unit}`;
  if (goal.minRatio !== undefined) return `≥ ${goal.minRatio.toFixed(2)}× best`;
  return `≤ ${goal.maxRatio.toFixed(2)}× best`;
}

function formatFigure(value) {
  if (typeof value === 'string') return value;
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return Math.round(value).toLocaleString('en-US');
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function formatRatio(ratio) {
  return ratio === undefined || !Number.isFinite(ratio) ? '—' : `${ratio.toFixed(2)}×`;
}

/**
 * Formats `ratio` with as many decimals (up to 6) as tell it apart from the goal
 * `limit`, so that a miss of 0.8962 against 0.90 reads "0.896×", not "0.90×".
 */
function formatGoalRatio(ratio, limit) {
  if (ratio === undefined || !Number.isFinite(ratio) || ratio === limit) return formatRatio(ratio);
  let digits = 2;
  while (digits < 6 && ratio.toFixed(digits) === limit.toFixed(digits)) digits++;
  return `${ratio.toFixed(digits)}×`;
}

function machineLines(run) {
  const m = run.machine;
  const modified = m.rspSourceModified ? ' with uncommitted changes in src/' : '';
  return [
    `- Run: ${run.startedAt}, ${run.mode} mode, ${run.repeat > 1 ? `median of ${run.repeat} measurements, ` : ''}${run.durationSeconds} s in all; rsp commit ${m.rspCommit ?? 'unknown'}${modified}`,
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}; load average (1, 5, 15 min) ${m.loadAverageAtStart.join(' ')} at the start, ${m.loadAverageAtEnd?.join(' ') ?? 'unknown'} at the end`,
    `- Software: Node.js ${m.node}${m.nodePath === undefined ? '' : ` (${m.nodePath})`}, ${m.haproxy ?? 'HAProxy not found'}, ${m.nginx ?? 'nginx not found'}, ${m.wrk ?? 'wrk not found'}, ${m.curl ?? 'curl not found'}`,
    `- Backends: 2 × ${run.backends.kind === 'nginx' ? 'nginx (1 worker process each)' : 'Node HTTP server (bench/node-backend.mjs)'} serving static files`,
  ];
}

function scenarioTable(run, scenario) {
  const byTarget = run.results[scenario.id] ?? {};
  const ratioKeys = new Set(METRICS.map((metric) => metric.key));
  const header = ['target'];
  for (const column of scenario.columns) {
    header.push(column.label);
    if (ratioKeys.has(column.key)) header.push('× best');
  }
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  const notes = [];
  for (const [target, result] of Object.entries(byTarget)) {
    const cells = [target];
    for (const column of scenario.columns) {
      cells.push(result.error === undefined ? formatFigure(result.figures[column.key]) : 'failed');
      if (ratioKeys.has(column.key)) cells.push(formatRatio(run.ratios[column.key]?.perTarget[target]));
    }
    lines.push(`| ${cells.join(' | ')} |`);
    if (result.error !== undefined) notes.push(`- ${target}: failed: ${result.error}`);
    else if (result.figures.note !== undefined) notes.push(`- ${target}: ${result.figures.note}`);
  }
  return [...lines, ...(notes.length > 0 ? ['', ...notes] : [])];
}

/** Returns the goals table: each rsp target's figure against the goals. */
function goalsTable(run) {
  const rspTargets = run.targets.filter((target) => target.name.startsWith('rsp') && target.skipped === undefined).map((target) => target.name);
  const header = ['figure', 'goal', 'best of HAProxy/nginx', ...rspTargets];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const metric of METRICS.filter((candidate) => candidate.goal !== undefined && run.results[candidate.scenario] !== undefined)) {
    const ratios = run.ratios[metric.key];
    const best = ratios === undefined ? '—' : `${formatFigure(ratios.bestValue)} ${metric.unit} (${ratios.best})`;
    const cells = [metric.label, describeGoal(metric), best];
    for (const target of rspTargets) {
      const value = run.results[metric.scenario]?.[target]?.figures?.[metric.key];
      const ratio = ratios?.perTarget[target];
      const verdict = judgeGoal(metric, value, ratio);
      const figure = metric.goal.max !== undefined ? `${formatFigure(value)} ${metric.unit}` : formatGoalRatio(ratio, metric.goal.minRatio ?? metric.goal.maxRatio);
      cells.push(verdict === undefined ? figure : `${figure} ${verdict}`);
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines;
}

/** Renders the whole run as markdown. */
export function renderMarkdown(run) {
  const lines = ['# rsp benchmark results', '', ...machineLines(run), ''];
  lines.push(
    '“× best” is the figure divided by the best figure of HAProxy and nginx in this run. For req/s and MB/s',
    'higher is better; for latency and memory lower is better. The load generator, the proxy and both',
    'backends share the cores, so compare targets within one run, not across machines. D ratios are',
    'taken to at least 1 MiB, because HAProxy and nginx grow by only a few KiB there.',
    '',
  );
  if (run.warnings.length > 0) lines.push('Warnings:', '', ...run.warnings.map((warning) => `- ${warning}`), '');

  lines.push('## Goals for rsp', '', ...goalsTable(run), '');
  for (const scenario of SCENARIOS) {
    if (run.results[scenario.id] === undefined) continue;
    lines.push(`## ${scenario.id}: ${scenario.title}`, '', run.scenarioDescriptions[scenario.id], '', ...scenarioTable(run, scenario), '');
  }
  lines.push('## Targets', '', '| target | what it is |', '|---|---|');
  for (const target of run.targets) lines.push(`| ${target.name} | ${target.description} |`);
  return `${lines.join('\n')}\n`;
}

// ---- SVG chart ----------------------------------------------------------------

const COLORS = ['#1b6ca8', '#e07b00', '#2a9d3a', '#c23b3b', '#7d4fb0', '#8c6d31', '#3f9fa8', '#555555'];
const RATIO_MIN = 1 / 8;
const RATIO_MAX = 64;

function escapeXml(text) {
  return String(text).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
}

/**
 * Renders the ratios of every target other than HAProxy and nginx as horizontal
 * bars on a log scale, one group per metric, each bar drawn from 1 (equal to the
 * best reference) to the ratio. Ratio goals are drawn as red lines.
 */
export function renderRatioChart(run) {
  const targets = run.targets
    .filter((target) => target.skipped === undefined && !REFERENCE_TARGETS.includes(target.name))
    .map((target) => target.name);
  const metrics = METRICS.filter((metric) => run.ratios[metric.key] !== undefined);

  const width = 960;
  const labelRight = 150;
  const plotLeft = labelRight + 10;
  const plotRight = width - 110;
  const rowHeight = 14;
  const barHeight = 11;
  const headerHeight = 20;
  const groupGap = 12;
  const top = 72;
  const groupHeight = headerHeight + targets.length * rowHeight + groupGap;
  const plotBottom = top + metrics.length * groupHeight;
  const height = plotBottom + 16;

  const logMin = Math.log2(RATIO_MIN);
  const logMax = Math.log2(RATIO_MAX);
  const x = (ratio) => {
    const clamped = Math.min(Math.max(ratio, RATIO_MIN), RATIO_MAX);
    return plotLeft + ((Math.log2(clamped) - logMin) / (logMax - logMin)) * (plotRight - plotLeft);
  };

  const subtitle = `${run.startedAt}, ${run.mode} mode, ${run.machine.cores} cores shared by load generator, proxies and backends. Log scale; red lines: goals for rsp.`;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Figures relative to the best of HAProxy and nginx (1× = equal to the best)</text>`,
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#444">${escapeXml(subtitle)}</text>`,
  ];

  for (let exponent = Math.round(logMin); exponent <= logMax; exponent++) {
    const ratio = 2 ** exponent;
    const tickX = x(ratio).toFixed(1);
    const label = ratio >= 1 ? `${ratio}×` : `1/${1 / ratio}×`;
    const isOne = ratio === 1;
    parts.push(
      `<line x1="${tickX}" y1="${top - 8}" x2="${tickX}" y2="${plotBottom}" stroke="${isOne ? '#000' : '#ddd'}" stroke-width="${isOne ? 1.5 : 1}"/>`,
      `<text x="${tickX}" y="${top - 12}" text-anchor="middle" fill="#444">${label}</text>`,
    );
  }

  metrics.forEach((metric, groupIndex) => {
    const groupTop = top + groupIndex * groupHeight;
    const direction = metric.better === 'higher' ? 'higher is better' : 'lower is better';
    const goal = metric.goal === undefined ? '' : `; goal ${describeGoal(metric)}`;
    const floor = metric.referenceFloor === undefined ? '' : `; ratio to at least ${metric.referenceFloor} ${metric.unit}`;
    parts.push(
      `<text x="10" y="${groupTop + 14}" stroke="#fff" stroke-width="4" paint-order="stroke"><tspan font-weight="bold">${escapeXml(metric.label)}</tspan><tspan dx="6" fill="#555">(${escapeXml(direction + goal + floor)})</tspan></text>`,
    );

    const barsTop = groupTop + headerHeight;
    targets.forEach((target, index) => {
      const y = barsTop + index * rowHeight;
      const color = COLORS[index % COLORS.length];
      parts.push(`<text x="${labelRight}" y="${y + barHeight - 1}" text-anchor="end" font-size="11" fill="${color}">${escapeXml(target)}</text>`);
      const ratio = run.ratios[metric.key].perTarget[target];
      if (ratio === undefined) {
        parts.push(`<text x="${(x(1) + 4).toFixed(1)}" y="${y + barHeight - 2}" font-size="10" fill="#777">not measured</text>`);
        return;
      }
      const x0 = x(1);
      const x1 = x(ratio);
      const offScale = ratio > RATIO_MAX || ratio < RATIO_MIN ? ' (off scale)' : '';
      parts.push(
        `<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y}" width="${Math.max(Math.abs(x1 - x0), 1).toFixed(1)}" height="${barHeight}" fill="${color}"><title>${escapeXml(`${target}: ${ratio.toFixed(2)}×`)}</title></rect>`,
        `<text x="${(Math.max(x0, x1) + 4).toFixed(1)}" y="${y + barHeight - 2}" font-size="10" fill="#333">${escapeXml(`${ratio.toFixed(2)}×${offScale}`)}</text>`,
      );
    });

    const goalRatio = metric.goal?.minRatio ?? metric.goal?.maxRatio;
    if (goalRatio !== undefined) {
      const goalX = x(goalRatio).toFixed(1);
      parts.push(`<line x1="${goalX}" y1="${barsTop - 3}" x2="${goalX}" y2="${barsTop + targets.length * rowHeight}" stroke="#d00" stroke-width="2"/>`);
    }
  });

  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
