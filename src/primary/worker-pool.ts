// The primary's set of worker processes: forks them with the config, tracks when
// they listen, replaces a worker that dies (with backoff when it keeps dying), and
// stops them all with a drain deadline.
import cluster, { type Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import type { Config } from '../config/types.js';
import { listenError, type RspError } from '../errors.js';
import { isWorkerMessage, type ClusterLoad, type PrimaryMessage, type WorkerMessage } from '../ipc/messages.js';
import type { Logger } from '../log.js';
import type { MetricSnapshot } from '../metrics/cluster-metrics.js';

/** A worker that lived at least this long is considered healthy, so its replacement starts at once. */
const STABLE_LIFETIME_MS = 10_000;
const FIRST_RESPAWN_DELAY_MS = 500;
const MAX_RESPAWN_DELAY_MS = 30_000;
/** How long after the drain deadline a worker may take to exit before it is killed. */
const EXIT_GRACE_MS = 5_000;

/** One worker position in the pool; the worker in it is replaced when it dies. */
interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  startedAt: number;
  /** Deaths in a row of workers that lived less than STABLE_LIFETIME_MS. */
  quickDeaths: number;
  /** Services whose listen socket the current worker has opened. */
  listening: Set<string>;
  respawnTimer: NodeJS.Timeout | undefined;
}

export interface PoolEvents {
  /** Every worker has opened every service's listen socket; addresses by service name. */
  ready: [addresses: ReadonlyMap<string, string>];
  /** A worker failed to open a listen socket before the pool became ready. */
  startFailed: [error: RspError];
  /** A worker sent a metrics snapshot; `requestId` is null for its periodic push. */
  metrics: [workerId: number, snapshot: MetricSnapshot, requestId: number | null];
  /** A worker process exited, planned or not. */
  workerExit: [workerId: number];
  /** A worker reported a backend connection outcome for passive health checks. */
  trafficReport: [service: string, backend: string, ok: boolean, reason: string];
  /** A worker reported its open connections. */
  loadReport: [workerId: number, load: ClusterLoad, sequence: number];
}

export class WorkerPool extends EventEmitter<PoolEvents> {
  private config: Config;
  private readonly log: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly slots: Slot[];
  private readonly addresses = new Map<string, string>();
  private ready = false;
  private stopping = false;

  /** Messages a new worker gets right after its config, such as the current health states. */
  private readonly initialMessages: (workerId: number) => PrimaryMessage[];

  constructor(
    config: Config,
    workerCount: number,
    log: Logger,
    env: NodeJS.ProcessEnv,
    initialMessages: (workerId: number) => PrimaryMessage[],
  ) {
    super();
    this.initialMessages = initialMessages;
    this.config = config;
    this.log = log;
    this.env = env;
    this.slots = Array.from({ length: workerCount }, (_, index) => ({
      index,
      worker: undefined,
      startedAt: 0,
      quickDeaths: 0,
      listening: new Set<string>(),
      respawnTimer: undefined,
    }));
  }

  get size(): number {
    return this.slots.length;
  }

  /** Whether every worker has opened every listen socket since start. */
  get isReady(): boolean {
    return this.ready;
  }

  /** Workers whose process is running now. */
  get running(): number {
    return this.slots.filter((slot) => slot.worker !== undefined && !slot.worker.isDead()).length;
  }

  /** Sends a reloaded config to every worker; replacement workers start with it too. */
  update(config: Config): void {
    this.config = config;
    for (const slot of this.slots) {
      if (slot.worker !== undefined) sendTo(slot.worker, { type: 'rsp:update', config });
    }
  }

  /** Sends `message` to every connected worker. */
  broadcast(message: PrimaryMessage): void {
    for (const slot of this.slots) {
      if (slot.worker !== undefined) sendTo(slot.worker, message);
    }
  }

  /** Ids of the workers whose IPC channel is open. */
  connectedWorkerIds(): number[] {
    const ids: number[] = [];
    for (const slot of this.slots) {
      if (slot.worker !== undefined && slot.worker.isConnected()) ids.push(slot.worker.id);
    }
    return ids;
  }

  /** Sends `message` to the worker with `workerId`, if it belongs to this pool and is connected. */
  sendToWorker(workerId: number, message: PrimaryMessage): void {
    const slot = this.slots.find((candidate) => candidate.worker?.id === workerId);
    if (slot?.worker !== undefined) sendTo(slot.worker, message);
  }

  /** Asks every connected worker for a metrics snapshot; returns how many were asked. */
  requestSnapshots(requestId: number): number {
    let asked = 0;
    for (const slot of this.slots) {
      const worker = slot.worker;
      if (worker === undefined || !worker.isConnected()) continue;
      sendTo(worker, { type: 'rsp:metrics-request', requestId });
      asked++;
    }
    return asked;
  }

  /** Forks every worker. Listen for `ready` or `startFailed` to learn the outcome. */
  start(): void {
    for (const slot of this.slots) this.fork(slot);
  }

  /**
   * Tells every worker to stop accepting and drain for `drainMs`, and resolves once
   * all have exited. A worker still running EXIT_GRACE_MS after the deadline is killed.
   */
  stop(drainMs: number): Promise<void> {
    this.stopping = true;
    const exits: Promise<void>[] = [];
    for (const slot of this.slots) {
      clearTimeout(slot.respawnTimer);
      const worker = slot.worker;
      if (worker === undefined || worker.isDead()) continue;
      exits.push(
        new Promise((resolve) => {
          const killTimer = setTimeout(() => {
            this.log.warn({ worker: worker.id, workerPid: worker.process.pid }, 'worker did not exit after the drain deadline; killing it');
            worker.process.kill('SIGKILL');
          }, drainMs + EXIT_GRACE_MS);
          worker.once('exit', () => {
            clearTimeout(killTimer);
            resolve();
          });
        }),
      );
      sendTo(worker, { type: 'rsp:stop', drainMs });
    }
    return Promise.all(exits).then(() => undefined);
  }

  private fork(slot: Slot): void {
    slot.respawnTimer = undefined;
    slot.listening = new Set();
    slot.startedAt = Date.now();
    const worker = cluster.fork(this.env);
    slot.worker = worker;

    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) this.onWorkerMessage(slot, worker, message);
    });
    worker.on('exit', (code: number | null, signal: string | null) => this.onWorkerExit(slot, worker, code, signal));
    worker.on('error', (error: NodeJS.ErrnoException) => {
      // A send to a worker that has just exited fails with EPIPE or ECONNRESET
      // before the primary reads the end of its channel. The exit handler logs
      // the exit, so the failed send is only a debug line.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') {
        this.log.debug({ err: error, worker: worker.id }, 'message to an exiting worker not sent');
      } else {
        this.log.warn({ err: error, worker: worker.id }, 'worker IPC error');
      }
    });
  }

  private onWorkerMessage(slot: Slot, worker: Worker, message: WorkerMessage): void {
    switch (message.type) {
      case 'rsp:ready':
        // A stop sent before the worker had its message listener was lost, so a
        // worker that becomes ready during a stop is stopped instead of started.
        if (this.stopping) {
          sendTo(worker, { type: 'rsp:stop', drainMs: 0 });
          break;
        }
        sendTo(worker, { type: 'rsp:config', config: this.config, slot: slot.index, poolSize: this.slots.length });
        for (const initial of this.initialMessages(worker.id)) sendTo(worker, initial);
        break;
      case 'rsp:load-report':
        this.emit('loadReport', worker.id, message.load, message.sequence);
        break;
      case 'rsp:traffic-report':
        this.emit('trafficReport', message.service, message.backend, message.ok, message.reason);
        break;
      case 'rsp:metrics':
        this.emit('metrics', worker.id, message.metrics, message.requestId);
        break;
      case 'rsp:listening':
        slot.listening.add(message.service);
        this.addresses.set(message.service, message.address);
        this.log.debug({ worker: worker.id, service: message.service, address: message.address }, 'worker listening');
        this.checkReady();
        break;
      case 'rsp:listen-failed': {
        const error = listenError(`service ${message.service}`, message.address, message.code, message.message);
        this.log.error(
          { worker: worker.id, service: message.service, address: message.address, code: error.code, errno: message.code },
          error.message,
        );
        if (!this.ready) {
          this.emit('startFailed', error);
        } else {
          // The replacement worker could not listen; kill it so the backoff applies.
          worker.process.kill('SIGKILL');
        }
        break;
      }
    }
  }

  private checkReady(): void {
    if (this.ready || this.stopping) return;
    const serviceCount = this.config.services.length;
    if (!this.slots.every((slot) => slot.listening.size === serviceCount)) return;
    this.ready = true;
    this.emit('ready', new Map(this.addresses));
  }

  private onWorkerExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    this.emit('workerExit', worker.id);
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    if (this.stopping) {
      this.log.info({ worker: worker.id, workerPid: worker.process.pid, code, signal }, 'worker exited');
      return;
    }

    const lifetimeMs = Date.now() - slot.startedAt;
    slot.quickDeaths = lifetimeMs < STABLE_LIFETIME_MS ? slot.quickDeaths + 1 : 0;
    const respawnDelayMs =
      slot.quickDeaths <= 1 ? 0 : Math.min(FIRST_RESPAWN_DELAY_MS * 2 ** (slot.quickDeaths - 2), MAX_RESPAWN_DELAY_MS);
    this.log.warn(
      { worker: worker.id, workerPid: worker.process.pid, code, signal, lifetimeMs, respawnDelayMs },
      'worker exited unexpectedly; starting a replacement',
    );
    slot.respawnTimer = setTimeout(() => this.fork(slot), respawnDelayMs);
  }
}

function sendTo(worker: Worker, message: PrimaryMessage): void {
  if (worker.isConnected()) worker.send(message);
}
