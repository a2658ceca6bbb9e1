// The Grafana dashboard (deploy/grafana/rsp.json): every query reads a metric that
// rsp's registry defines, and the panels an operator needs are there.
// The integration test deploy-dashboard-metrics checks the same names in a live scrape.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { CONNECTION_STATS, createConnectionErrors, createPrimaryMetrics } from '../../src/metrics/definitions.js';
import { dashboardQueries, metricNamesIn, readRepoFile } from '../deploy/files.js';

interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly templating: { readonly list: readonly { readonly name: string; readonly type: string; readonly query: unknown }[] };
  readonly panels: readonly {
    readonly id: number;
    readonly type: string;
    readonly title: string;
    readonly datasource?: { readonly uid: string };
    readonly targets?: readonly { readonly expr?: string; readonly datasource?: { readonly uid: string } }[];
  }[];
}

const dashboard = JSON.parse(readRepoFile('deploy/grafana/rsp.json')) as Dashboard;
const queries = dashboardQueries(dashboard);
const queriedNames = new Set(queries.flatMap((query) => metricNamesIn(query.expr)));

/** Returns every sample name that rsp's registries can expose: the rsp_* metrics, their histogram series and the default metrics. */
async function exportedSampleNames(): Promise<Set<string>> {
  const registry = new Registry();
  createConnectionErrors(registry);
  createPrimaryMetrics(registry);
  collectDefaultMetrics({ register: registry });
  const metrics = [
    ...(await registry.getMetricsAsJSON()).map((metric) => ({ name: metric.name, type: String(metric.type) })),
    ...Object.values(CONNECTION_STATS),
  ];
  const names = new Set<string>();
  for (const metric of metrics) {
    names.add(metric.name);
    if (metric.type === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
    }
  }
  return names;
}

describe('grafana dashboard', () => {
  test('has a fixed uid and title', () => {
    assert.equal(dashboard.uid, 'rsp');
    assert.equal(dashboard.title, 'rsp');
  });

  test('queries only metrics rsp defines', async () => {
    const exported = await exportedSampleNames();
    assert.ok(queries.length > 0, 'the dashboard has no queries');
    for (const query of queries) {
      for (const name of metricNamesIn(query.expr)) {
        assert.ok(exported.has(name), `panel "${query.panel}" queries ${name}, which rsp does not export`);
      }
    }
  });

  test('covers what an operator watches', () => {
    const required = [
      'rsp_connections_total',
      'rsp_connections_active',
      'rsp_bytes_total',
      'rsp_connection_errors_total',
      'rsp_backend_up',
      'rsp_backend_connect_duration_seconds_bucket',
      'rsp_connection_duration_seconds_bucket',
      'rsp_workers',
      'rsp_config_reloads_total',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
    ];
    for (const name of required) assert.ok(queriedNames.has(name), `no panel queries ${name}`);
  });

  test('quantiles group buckets by le', () => {
    const quantileQueries = queries.filter((query) => query.expr.includes('histogram_quantile'));
    assert.ok(quantileQueries.length >= 6, `${quantileQueries.length} quantile queries`);
    for (const query of quantileQueries) {
      assert.match(query.expr, /sum by \(le\b[^)]*\) \(rate\(\w+_bucket\{/, `panel "${query.panel}"`);
    }
  });

  test('rates use $__rate_interval', () => {
    for (const query of queries) {
      for (const range of query.expr.matchAll(/\b(?:rate|increase)\(\w+\{[^}]*\}\[([^\]]+)\]/g)) {
        assert.equal(range[1], '$__rate_interval', `panel "${query.panel}"`);
      }
    }
  });

  test('panels use the datasource variable', () => {
    const variable = dashboard.templating.list.find((candidate) => candidate.name === 'datasource');
    assert.equal(variable?.type, 'datasource');
    assert.equal(variable?.query, 'prometheus');
    for (const panel of dashboard.panels.filter((candidate) => candidate.type !== 'row')) {
      assert.equal(panel.datasource?.uid, '${datasource}', `panel "${panel.title}"`);
      for (const target of panel.targets ?? []) assert.equal(target.datasource?.uid, '${datasource}', `panel "${panel.title}"`);
    }
  });

  test('panel ids are unique', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    assert.equal(new Set(ids).size, ids.length);
  });
});

describe('PromQL metric names', () => {
  test('skips functions, labels and durations', () => {
    const expr = 'histogram_quantile(0.9, sum by (le, backend) (rate(rsp_x_bucket{service=~"a|b", backend!=""}[$__rate_interval])))';
    assert.deepEqual(metricNamesIn(expr), ['rsp_x_bucket']);
  });

  test('finds both sides of a binary operator', () => {
    assert.deepEqual(metricNamesIn('sum(a_total) / on (job) group_left b_total or vector(0)'), ['a_total', 'b_total']);
  });
});
