// Every metric and grouping label that deploy/grafana/rsp.json queries appears in a
// live scrape of rsp after some traffic, a refused backend connect and a reload.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findClosedPort, startEchoBackend } from '../helpers/backends.js';
import { exchange } from '../helpers/client.js';
import { metricsAddress, scrapeUntil, type Samples } from '../helpers/metrics.js';
import { operationsConfig, reloadRsp } from '../helpers/reload.js';
import { startRsp } from '../helpers/rsp.js';
import { dashboardQueries, metricNamesIn, readRepoFile } from '../deploy/files.js';

const CONNECTIONS = 6;
/** Labels that Prometheus adds at scrape time, so rsp never exports them. */
const TARGET_LABELS = new Set(['instance', 'job']);

const queries = dashboardQueries(JSON.parse(readRepoFile('deploy/grafana/rsp.json')) as { panels: [] });

/** Returns the labels of every `by (...)` clause of a query. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((match) => (match[1] ?? '').split(',').map((label) => label.trim()));
}

function hasEveryMetric(samples: Samples): boolean {
  return queries.every((query) => metricNamesIn(query.expr).every((name) => samples.select(name).length > 0));
}

test('dashboard metrics appear in a scrape', async (t) => {
  const backend = await startEchoBackend();
  t.after(() => backend.close());
  // Half the connections try this port first; its refusal is counted in rsp_connection_errors_total.
  const closedPort = await findClosedPort();
  const config = operationsConfig({ backends: [backend.address, `127.0.0.1:${closedPort}`] });
  const rsp = await startRsp({ config });
  t.after(() => rsp.stop());

  for (let index = 0; index < CONNECTIONS; index++) {
    const reply = await exchange(rsp.port, { send: `request ${index}\n`, timeoutMs: 10_000 });
    assert.equal(reply.endedBy, 'end', `connection ${index}`);
  }
  const reload = await reloadRsp(rsp, config);
  assert.match(reload.msg ?? '', /^reload complete/);

  const samples = await scrapeUntil(metricsAddress(rsp.started), hasEveryMetric, 10_000);
  for (const query of queries) {
    for (const name of metricNamesIn(query.expr)) {
      const series = samples.select(name);
      assert.ok(series.length > 0, `panel "${query.panel}" queries ${name}, which the scrape lacks`);
      for (const label of groupingLabels(query.expr).filter((candidate) => !TARGET_LABELS.has(candidate))) {
        assert.ok(
          series.some((sample) => sample.labels[label] !== undefined),
          `panel "${query.panel}" groups ${name} by ${label}, which no sample has`,
        );
      }
    }
  }
  assert.equal(await rsp.stop(), 0);
});
