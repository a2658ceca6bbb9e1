// Reads rsp's metrics endpoint: plain HTTP GETs with a deadline, and a parser for
// the Prometheus text format that keeps every sample with its labels.
import { request } from 'node:http';
import { portOf } from './rsp.js';
import { sleep } from './wait.js';

export interface HttpResult {
  readonly status: number;
  readonly body: string;
  /** Milliseconds from sending the request to the end of the response body. */
  readonly elapsedMs: number;
}

/**
 * Sends `GET path` to `address` (`host:port` as the "rsp started" line gives it) on
 * a new connection. Rejects on a connection error or when the whole response has not
 * arrived within `timeoutMs`.
 */
export function httpGet(address: string, path: string, timeoutMs = 5_000): Promise<HttpResult> {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const startedAt = Date.now();
  return new Promise((resolve, reject) => {
    // agent: false opens a new connection and closes it after the response, so no
    // keep-alive socket outlives the test.
    const req = request({ host, port: portOf(address), path, method: 'GET', agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (text: string) => (body += text));
      response.on('end', () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, body, elapsedMs: Date.now() - startedAt });
      });
      response.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`GET ${path} on ${address} got no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end();
  });
}

/** One sample line of the Prometheus text format. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabelValue(text: string): string {
  return text.replace(/\\(.)/g, (_match, escaped: string) => (escaped === 'n' ? '\n' : escaped));
}

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** The samples of one scrape, with lookups by metric name and labels. */
export class Samples {
  readonly samples: readonly Sample[];
  readonly text: string;

  constructor(text: string) {
    this.text = text;
    const samples: Sample[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const match = SAMPLE_LINE.exec(line);
      if (match === null) throw new Error(`Not a Prometheus sample line: ${JSON.stringify(line)}`);
      const labels: Record<string, string> = {};
      for (const pair of (match[2] ?? '').matchAll(LABEL_PAIR)) {
        labels[pair[1] as string] = unescapeLabelValue(pair[2] as string);
      }
      samples.push({ name: match[1] as string, labels, value: parseValue(match[3] as string) });
    }
    this.samples = samples;
  }

  /** Samples of `name` whose labels include every pair of `labels`. */
  select(name: string, labels: Readonly<Record<string, string>> = {}): Sample[] {
    return this.samples.filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
  }

  /** Sum of the samples that `select` returns, or 0 when there are none. */
  sum(name: string, labels: Readonly<Record<string, string>> = {}): number {
    return this.select(name, labels).reduce((total, sample) => total + sample.value, 0);
  }

  /** Series of `name` as `labels → value`, keyed by the JSON of the sorted labels, for comparing two scrapes. */
  series(name: string): Map<string, number> {
    const series = new Map<string, number>();
    for (const sample of this.select(name)) series.set(seriesKey(sample), sample.value);
    return series;
  }
}

/** Returns a key of a sample's name and labels that does not depend on the label order. */
export function seriesKey(sample: Sample): string {
  const labels = Object.entries(sample.labels).sort(([a], [b]) => a.localeCompare(b));
  return `${sample.name}${JSON.stringify(Object.fromEntries(labels))}`;
}

/** GETs /metrics and parses it. Rejects on a status other than 200. */
export async function scrape(address: string, timeoutMs = 5_000): Promise<Samples> {
  const result = await httpGet(address, '/metrics', timeoutMs);
  if (result.status !== 200) throw new Error(`GET /metrics on ${address} returned ${result.status}: ${result.body}`);
  return new Samples(result.body);
}

/**
 * Scrapes until `done(samples)` returns true and returns that scrape, or the last scrape
 * once `timeoutMs` has passed, so the caller's exact asserts report the values.
 * Counters of connections that just closed reach the primary a moment later, which
 * is why a test polls before it asserts.
 */
export async function scrapeUntil(address: string, done: (samples: Samples) => boolean, timeoutMs = 5_000): Promise<Samples> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const samples = await scrape(address);
    if (done(samples) || Date.now() >= deadline) return samples;
    await sleep(100);
  }
}

/** Returns the metrics address from the "rsp started" line, failing when metrics are off. */
export function metricsAddress(started: Readonly<Record<string, unknown>>): string {
  const address = started.metrics;
  if (typeof address !== 'string') throw new Error(`The "rsp started" line has no metrics address: ${JSON.stringify(started)}`);
  return address;
}
