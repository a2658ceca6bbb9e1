// A worker process: waits for the config from the primary, opens one listener
// per service on the shared cluster socket, and drains on the primary's stop message.
import cluster from 'node:cluster';
import { formatEndpoint } from '../config/endpoint.js';
import type { Config } from '../config/types.js';
import { isPrimaryMessage, type ClusterLoad, type ServiceLoad, type WorkerMessage } from '../ipc/messages.js';
import { createLogger, type Logger, type LogLevel } from '../log.js';
import type { LimitView } from '../balancing/balancer.js';
import type { BackendState } from '../health/health-monitor.js';
import { WorkerMetrics } from '../metrics/worker-metrics.js';
import { enableReadGarbageCollection } from '../pump/read-garbage.js';
import { Throttle } from '../throttle.js';
import { ServiceListener, type LoadChange } from './service-listener.js';

const METRICS_PUSH_INTERVAL_MS = 2_000;
/**
 * The shortest time between two load reports to the primary after a change of
 * open-connection counts. A change after a quiet spell is reported at the end of
 * the event loop turn. Changes that follow within this interval are batched into
 * one report at its end.
 */
const LOAD_REPORT_INTERVAL_MS = 5;
/**
 * The same for round-robin picks alone. Each worker's own picks are spread evenly,
 * so a later report only delays the correction of picks two workers made at the
 * same time, and it saves the primary most of the messages under load.
 */
const PICKS_REPORT_INTERVAL_MS = 50;

export function runWorker(): void {
  enableReadGarbageCollection();
  const workerId = cluster.worker?.id ?? 0;
  const log = createLogger({ proc: 'worker', worker: workerId }, (process.env.RSP_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  const state = new WorkerState(log, new WorkerMetrics(`worker-${workerId}`));

  process.on('message', (message: unknown) => {
    if (!isPrimaryMessage(message)) return;
    switch (message.type) {
      case 'rsp:config':
        void state.start(message.config, message.slot, message.poolSize);
        break;
      case 'rsp:update':
        state.update(message.config);
        break;
      case 'rsp:stop':
        void state.stop(message.drainMs);
        break;
      case 'rsp:metrics-request':
        void state.sendMetrics(message.requestId);
        break;
      case 'rsp:health':
        state.setHealth(message.states);
        break;
      case 'rsp:load-view':
        state.setOthersLoad(message.others, message.acknowledged);
        break;
    }
  });

  // Periodic pushes keep the primary's copy recent, so a worker that dies loses at
  // most this interval's increments from the cluster totals.
  setInterval(() => void state.sendMetrics(null), METRICS_PUSH_INTERVAL_MS).unref();

  void send({ type: 'rsp:ready' });

  // The primary owns the signals. A terminal's Ctrl-C or hang-up reaches the whole
  // process group, so workers ignore SIGINT and SIGHUP and wait for the primary's
  // stop message. A SIGTERM sent to one worker drains just that worker.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  process.on('SIGTERM', () => void state.stop(state.drainMs()));

  // Without its primary a worker must not keep a listen socket open.
  process.on('disconnect', () => {
    log.error('lost the IPC channel to the primary; exiting');
    process.exit(1);
  });
}

class WorkerState {
  private readonly log: Logger;
  private readonly metrics: WorkerMetrics;
  private listeners: ServiceListener[] = [];
  private config: Config | undefined;
  private started = false;
  private stopping = false;
  /** Health states that arrived before the listeners existed. */
  private pendingHealth: readonly BackendState[] | undefined;
  private readonly loadReports = new Throttle(() => this.sendLoadReport());
  /** Sequence of the latest load report sent; the primary echoes it in its views. */
  private reportSequence = 0;
  private admittedSinceReport = false;
  private readonly limitView: LimitView = { current: true, workers: 1 };

  constructor(log: Logger, metrics: WorkerMetrics) {
    this.log = log;
    this.metrics = metrics;
  }

  async sendMetrics(requestId: number | null): Promise<void> {
    for (const listener of this.listeners) listener.flushByteCounts();
    const metrics = await this.metrics.snapshot();
    await send({ type: 'rsp:metrics', requestId, metrics });
  }

  drainMs(): number {
    return Math.max(0, ...(this.config?.services.map((service) => service.timeouts.drainMs) ?? [0]));
  }

  async start(config: Config, slot: number, poolSize: number): Promise<void> {
    if (this.started || this.stopping) return;
    this.started = true;
    this.config = config;
    this.limitView.workers = poolSize;
    this.listeners = config.services.map(
      (service) =>
        new ServiceListener(
          service,
          this.log,
          this.metrics,
          slot,
          (backend, ok, reason) => {
            void send({ type: 'rsp:traffic-report', service: service.name, backend, ok, reason });
          },
          (change) => this.onLoadChange(change),
          this.limitView,
        ),
    );
    if (this.pendingHealth !== undefined) this.setHealth(this.pendingHealth);
    await Promise.all(this.listeners.map((listener) => this.listen(listener)));
  }

  /** Applies the other workers' open connections to each service. */
  setOthersLoad(others: ClusterLoad, acknowledged: number): void {
    // The view is current when it includes this worker's latest report and no
    // connection was admitted since.
    if (acknowledged === this.reportSequence && !this.admittedSinceReport) this.limitView.current = true;
    for (const listener of this.listeners) {
      listener.setOthersLoad(others[listener.config.name] ?? { backends: {}, clients: {}, picks: {} });
    }
  }

  private onLoadChange(change: LoadChange): void {
    if (change === 'up') {
      this.limitView.current = false;
      this.admittedSinceReport = true;
    }
    this.loadReports.request(change === 'picks' ? PICKS_REPORT_INTERVAL_MS : LOAD_REPORT_INTERVAL_MS);
  }

  private sendLoadReport(): void {
    const load: Record<string, ServiceLoad> = {};
    for (const listener of this.listeners) {
      if (listener.sharesLoad()) load[listener.config.name] = listener.load();
    }
    this.reportSequence++;
    this.admittedSinceReport = false;
    void send({ type: 'rsp:load-report', load, sequence: this.reportSequence });
  }

  /** Passes the primary's backend states to each service. */
  setHealth(states: readonly BackendState[]): void {
    if (this.listeners.length === 0) {
      this.pendingHealth = states;
      return;
    }
    for (const listener of this.listeners) {
      const name = listener.config.name;
      const own = states.filter((state) => state.service === name);
      listener.setHealth(
        new Map(own.map((state) => [state.backend, state.up])),
        new Set(own.filter((state) => state.failing).map((state) => state.backend)),
      );
    }
  }

  /** Applies a reloaded config whose services listen where the running ones do. */
  update(config: Config): void {
    // An update that arrives before the config is ignored: the config the primary
    // sends in reply to rsp:ready is already the updated one.
    if (this.stopping || !this.started) return;
    const byName = new Map(this.listeners.map((listener) => [listener.config.name, listener]));
    for (const service of config.services) {
      const listener = byName.get(service.name);
      if (listener === undefined) {
        this.log.error({ service: service.name }, 'reloaded config has a service this worker does not run; ignoring it');
        continue;
      }
      listener.update(service);
    }
    this.config = config;
    this.log.debug({ services: config.services.length }, 'applied the reloaded config');
  }

  async stop(drainMs: number): Promise<void> {
    if (this.stopping) {
      // A second stop with no drain time (the primary got a second SIGINT) cuts the drain short.
      if (drainMs === 0) for (const listener of this.listeners) listener.cutDrainShort();
      return;
    }
    this.stopping = true;
    const results = await Promise.all(this.listeners.map((listener) => listener.drain(drainMs)));
    const finished = results.reduce((sum, result) => sum + result.finished, 0);
    const cut = results.reduce((sum, result) => sum + result.cut, 0);
    this.log.info({ finished, cut }, 'worker drained; exiting');
    // The last snapshot carries the counts of the connections that just closed.
    await this.sendMetrics(null);
    process.exit(0);
  }

  private async listen(listener: ServiceListener): Promise<void> {
    const configured = formatEndpoint(listener.config.listen);
    try {
      const address = await listener.listen();
      await send({ type: 'rsp:listening', service: listener.config.name, address });
    } catch (error) {
      const errno = error as NodeJS.ErrnoException;
      await send({
        type: 'rsp:listen-failed',
        service: listener.config.name,
        address: configured,
        code: errno.code ?? 'UNKNOWN',
        message: errno.message,
      });
    }
  }
}

/** Sends a message to the primary; resolves once it is written to the channel (or failed). */
function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) {
      resolve();
      return;
    }
    process.send(message, undefined, undefined, () => resolve());
  });
}
