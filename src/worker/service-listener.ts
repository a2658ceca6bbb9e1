// One service inside a worker: the listen socket, backend selection with retry on
// the next backend, the pumps of open connections, and draining on stop.
import { BlockList, createServer, isIPv6, type Server, type Socket } from 'node:net';
import { formatEndpoint } from '../config/endpoint.js';
import type { BackendConfig, ServiceConfig } from '../config/types.js';
import { allowsOneMore, isSelectable, type BalancedBackend, type Balancer, type LimitView } from '../balancing/balancer.js';
import { createBalancer } from '../balancing/create-balancer.js';
import { reasonForError, type CloseReason } from '../pump/close-reason.js';
import { HandlePump } from '../pump/handle-pump.js';
import type { ConnectionPump, PumpResult } from '../pump/pump-base.js';
import { Pump } from '../pump/pump.js';
import { handleError, type HandleAddress, type StreamHandles, type TcpHandle } from '../pump/stream-handles.js';
import { LogLimiter, type Logger } from '../log.js';
import type { HistogramCounts } from '../metrics/connection-stats.js';
import type { BackendMetrics, WorkerMetrics } from '../metrics/worker-metrics.js';
import { encodeProxyHeader, normalizeAddress, type ProxiedAddresses } from '../proxy-protocol/header.js';
import { readProxyHeader } from '../proxy-protocol/read-header.js';
import type { ServiceLoad } from '../ipc/messages.js';
import { connectBackend } from './backend-connect.js';
import { ConnectionList, type ListedConnection } from './connection-list.js';
import { HandleClient, setHandleAcceptor, streamHandlesFor } from './handle-client.js';
import { connectBackendHandle } from './handle-connect.js';

/** Delay before waiting connections are tried again after a connect failure sent one back to the queue. */
const QUEUE_RETRY_DELAY_MS = 250;

/** How long a drain waits for cut connections to finish closing. */
const CLOSE_WAIT_MS = 1_000;

/**
 * The object that getpeername() fills for each client accepted as a TCP handle.
 * Reusing it lets Node.js set existing fields instead of adding them to a new object.
 */
const acceptedPeer: HandleAddress = {};

/** Counts reported when a service stops. */
export interface DrainResult {
  /** Connections that finished on their own before the deadline. */
  readonly finished: number;
  /** Connections closed by rsp at the deadline. */
  readonly cut: number;
}

interface ServiceBackend extends BalancedBackend {
  readonly metrics: BackendMetrics;
  /** Whether this worker's last passive report on the backend was a failure. */
  reportedFailure: boolean;
  /** Connections this worker sent to the backend, reported for the cluster-wide round-robin. */
  picks: number;
  /** The other workers' picks of the backend in the primary's last view; undefined before the first. */
  othersPicksSeen: number | undefined;
}

/**
 * The kind of change in this worker's shared load: open-connection counts went
 * `up` or `down`, or only the round-robin picks changed.
 */
export type LoadChange = 'up' | 'down' | 'picks';

/** Receives connection outcomes for passive health checks. */
export type TrafficReporter = (backend: string, ok: boolean, reason: CloseReason) => void;

/** The outcome of one attempt to start a connection on a backend. */
type StartResult = 'started' | 'full' | 'no_backend';

/** A connection waiting for a free slot. */
interface Waiter {
  readonly connection: Connection;
  readonly tried: Set<BalancedBackend>;
  readonly timer: NodeJS.Timeout;
}

/** A client connection from accept until both sockets are closed. */
interface Connection extends ListedConnection<Connection> {
  /** A net.Socket, or a TCP handle when the connection runs on handles (see handle-client.ts). */
  readonly client: Socket | HandleClient;
  /**
   * The original client: the socket's peer, or the source of a PROXY protocol header
   * from a trusted load balancer. Read at accept time because a closed socket no
   * longer has it.
   */
  sourceAddress: string;
  sourcePort: number;
  /** The addresses of a PROXY protocol header the client sent, if any. */
  proxied: ProxiedAddresses | undefined;
  /** The backend socket or connect attempt, until the pump takes over. */
  backendSocket: { destroy(): void } | undefined;
  /** The backend the pump is connected to, once connected. */
  backend: ServiceBackend | undefined;
  pump: ConnectionPump | undefined;
  readonly acceptedAt: number;
  /** The client address counted against `max_connections_per_client`, if any. */
  countedClient: string | undefined;
}

export class ServiceListener {
  private current: ServiceConfig;
  private readonly log: Logger;
  private readonly server: Server;
  private backends: ServiceBackend[];
  private readonly metrics: WorkerMetrics;
  /** Histogram of whole-connection durations. A reload keeps the service's name, so it keeps this histogram too. */
  private readonly connectionDuration: HistogramCounts;
  /** Selects among the backends that are not backups. */
  private balancer: Balancer;
  /** Selects among backup backends, used only when `balancer` has no backend left. */
  private backupBalancer: Balancer;
  /** Latest health state by backend address; addresses not listed are up. */
  private health = new Map<string, boolean>();
  private readonly reportTraffic: TrafficReporter;
  /** Sources that must send a PROXY protocol header, or undefined when the service accepts none. */
  private trustedProxies: BlockList | undefined;
  private readonly connections = new ConnectionList<Connection>();
  /** Connections open per client address in this worker; kept only with `max_connections_per_client`. */
  private readonly clientCounts = new Map<string, number>();
  /** The same counts summed over the other workers, from the primary. */
  private othersClients = new Map<string, number>();
  /** Backends removed by a reload that still have open connections, by address. */
  private readonly removedBackends = new Map<string, ServiceBackend>();
  /** Connections waiting for a slot, oldest first. */
  private readonly queue: Waiter[] = [];
  private processingQueue = false;
  private queueRetryTimer: NodeJS.Timeout | undefined;
  /** Set by a processQueue() call made while the queue was being processed. */
  private queueChanged = false;
  private readonly onLoadChange: (change: LoadChange) => void;
  private readonly limitView: LimitView;
  private readonly logLimiter = new LogLimiter();
  private onEmpty: (() => void) | undefined;
  /** dependsOnClusterCounts() for the current config, computed once per config. */
  private usesClusterCounts: boolean;
  /** sharesRoundRobinPicks() for the current config. */
  private sharesPicks: boolean;
  private draining = false;
  /** Connections that arrived after drain() closed the listener. */
  private acceptedWhileDraining = 0;
  /** Ends the current drain wait early; set while drain() waits. */
  private endWait: (() => void) | undefined;

  private readonly slot: number;

  /**
   * `slot` is the worker's 0-based position in its pool (see createBalancer).
   * `onLoadChange` runs whenever the load the service shares changes (see
   * sharesLoad). `limitView` is shared by every service of the worker, and its
   * worker count must be set before the service is created.
   */
  constructor(
    config: ServiceConfig,
    log: Logger,
    metrics: WorkerMetrics,
    slot: number,
    reportTraffic: TrafficReporter,
    onLoadChange: (change: LoadChange) => void,
    limitView: LimitView,
  ) {
    this.current = config;
    this.slot = slot;
    this.log = log.child({ service: config.name });
    this.metrics = metrics;
    this.connectionDuration = metrics.connectionDuration(config.name);
    this.reportTraffic = reportTraffic;
    this.onLoadChange = onLoadChange;
    this.limitView = limitView;
    this.backends = config.backends.map((backend) => this.createBackend(backend));
    this.balancer = createBalancer(config.algorithm, this.mainBackends(), slot);
    this.backupBalancer = createBalancer(config.algorithm, this.backupBackends(), slot);
    this.trustedProxies = createBlockList(config.acceptProxyFrom);
    this.usesClusterCounts = dependsOnClusterCounts(config);
    this.sharesPicks = sharesRoundRobinPicks(config, limitView);
    // pauseOnConnect: no client byte is read before a backend is connected, so a
    // failed backend connect can be retried on another backend with nothing lost.
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, this.onClientConnection);
  }

  /** The service config that new connections use. */
  get config(): ServiceConfig {
    return this.current;
  }

  /**
   * Applies a reloaded config with the same listen address: new connections use the
   * new backends, algorithm and timeouts at once. Open connections keep their
   * backend and finish normally, including those to removed backends. A backend
   * kept across the reload keeps its active count, so least-connections stays right.
   */
  update(config: ServiceConfig): void {
    const known = new Map(this.backends.map((backend) => [backend.config.address, backend]));
    for (const [address, backend] of this.removedBackends) if (!known.has(address)) known.set(address, backend);
    this.backends = config.backends.map((backendConfig) => {
      const backend = known.get(backendConfig.address);
      if (backend === undefined) return this.createBackend(backendConfig);
      backend.config = backendConfig;
      return backend;
    });
    // A removed backend with open connections keeps its object, so its count stays
    // right in load reports and comes back with it if a later update re-adds it.
    const current = new Set(this.backends);
    this.removedBackends.clear();
    for (const backend of known.values()) {
      if (!current.has(backend) && backend.active > 0) this.removedBackends.set(backend.config.address, backend);
    }
    this.balancer = createBalancer(config.algorithm, this.mainBackends(), this.slot);
    this.backupBalancer = createBalancer(config.algorithm, this.backupBackends(), this.slot);
    this.trustedProxies = createBlockList(config.acceptProxyFrom);
    this.current = config;
    this.applyAcceptPath();
    this.usesClusterCounts = dependsOnClusterCounts(config);
    this.sharesPicks = sharesRoundRobinPicks(config, this.limitView);
    this.processQueue();
  }

  /** Returns whether the primary needs this service's load: cluster-wide counts or round-robin picks. */
  sharesLoad(): boolean {
    return this.usesClusterCounts || this.sharesPicks;
  }

  /** This worker's open connections and picks of the service, without zero entries. */
  load(): ServiceLoad {
    const backends: Record<string, number> = {};
    const picks: Record<string, number> = {};
    if (this.usesClusterCounts) {
      for (const backend of this.backends) if (backend.active > 0) backends[backend.config.address] = backend.active;
      for (const backend of this.removedBackends.values()) if (backend.active > 0) backends[backend.config.address] = backend.active;
    }
    if (this.sharesPicks) {
      for (const backend of this.backends) if (backend.picks > 0) picks[backend.config.address] = backend.picks;
    }
    return { backends, clients: Object.fromEntries(this.clientCounts), picks };
  }

  /**
   * Applies the other workers' counts from the primary, replays their new
   * round-robin picks into this worker's rotation, then lets waiting connections
   * in if slots opened.
   */
  setOthersLoad(load: ServiceLoad): void {
    for (const backend of this.backends) {
      const address = backend.config.address;
      backend.othersActive = load.backends[address] ?? 0;
      const othersPicks = load.picks[address] ?? 0;
      // The first view of a backend only sets the baseline: the picks made before
      // this worker knew the backend are history its rotation should not repeat.
      // The sum falls when a worker exits, which is no pick either.
      const newPicks = othersPicks - (backend.othersPicksSeen ?? othersPicks);
      backend.othersPicksSeen = othersPicks;
      if (newPicks > 0) (backend.config.backup ? this.backupBalancer : this.balancer).notePicks(backend, newPicks);
    }
    this.othersClients = new Map(Object.entries(load.clients));
    this.processQueue();
  }

  /**
   * Applies the primary's health view: a backend marked down takes no new
   * connections, and this worker reports its next clean connection to a `failing` one.
   */
  setHealth(health: ReadonlyMap<string, boolean>, failing: ReadonlySet<string>): void {
    this.health = new Map(health);
    for (const backend of this.backends) {
      backend.up = this.health.get(backend.config.address) ?? true;
      if (failing.has(backend.config.address)) backend.reportedFailure = true;
    }
    this.processQueue();
  }

  private createBackend(backend: BackendConfig): ServiceBackend {
    return {
      config: backend,
      active: 0,
      othersActive: 0,
      up: this.health.get(backend.address) ?? true,
      limitView: this.limitView,
      metrics: this.metrics.forBackend(this.current.name, backend.address),
      reportedFailure: false,
      picks: 0,
      othersPicksSeen: undefined,
    };
  }

  private mainBackends(): ServiceBackend[] {
    return this.backends.filter((backend) => !backend.config.backup);
  }

  private backupBackends(): ServiceBackend[] {
    return this.backends.filter((backend) => backend.config.backup);
  }

  /** Opens the listen socket and resolves with the address it is bound to. */
  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host: this.config.listen.host, port: this.config.listen.port }, () => {
        this.server.off('error', onError);
        this.applyAcceptPath();
        this.server.on('error', (error) => this.log.error({ err: error }, 'listen socket error'));
        const address = this.server.address();
        if (address === null || typeof address === 'string') {
          resolve(formatEndpoint(this.config.listen));
        } else {
          resolve(formatEndpoint({ host: address.address, port: address.port }));
        }
      });
    });
  }

  /**
   * Stops accepting, waits up to `drainMs` for open connections to finish, then
   * closes the rest. Resolves with how many finished and how many were cut.
   */
  async drain(drainMs: number): Promise<DrainResult> {
    this.server.close();
    this.draining = true;
    const openAtStart = this.connections.size;
    await this.waitForNoConnections(drainMs);

    const waiters = this.queue.splice(0);
    for (const waiter of waiters) clearTimeout(waiter.timer);
    const cut = this.connections.size;
    for (const connection of this.connections.toArray()) this.abortConnection(connection);
    for (const waiter of waiters) this.forget(waiter.connection);
    // The pumps' close callbacks, which count the cut connections and log their
    // access lines, run on later turns of the event loop.
    await this.waitForNoConnections(CLOSE_WAIT_MS);
    return { finished: openAtStart + this.acceptedWhileDraining - cut, cut };
  }

  /** Ends the wait of a running drain now, so its open connections are cut at once. */
  cutDrainShort(): void {
    this.endWait?.();
  }

  private waitForNoConnections(timeoutMs: number): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.onEmpty = undefined;
        this.endWait = undefined;
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      this.onEmpty = finish;
      this.endWait = finish;
    });
  }

  /** Takes clients as TCP handles or as net.Socket, as streamHandlesFor() returns for the current config. */
  private applyAcceptPath(): void {
    const handles = streamHandlesFor(this.current);
    const acceptor = handles === undefined ? undefined : (error: number, handle: TcpHandle | undefined): void => this.onClientHandle(handles, error, handle);
    setHandleAcceptor(this.server, acceptor);
  }

  private onClientHandle(handles: StreamHandles, error: number, handle: TcpHandle | undefined): void {
    if (error !== 0 || handle === undefined) {
      this.server.emit('error', handleError(error, 'accept'));
      return;
    }
    handle.setNoDelay(true);
    // A failed call leaves the previous client's fields in the reused object.
    let address = '';
    let port = 0;
    if (handle.getpeername(acceptedPeer) === 0) {
      address = normalizeAddress(acceptedPeer.address ?? '');
      port = acceptedPeer.port ?? 0;
    }
    this.admit(this.accept(new HandleClient(handles, handle), address, port));
  }

  private readonly onClientConnection = (client: Socket): void => {
    // The local address (getsockname) is read only when a PROXY header needs it.
    const connection = this.accept(client, normalizeAddress(client.remoteAddress ?? ''), client.remotePort ?? 0);
    // Until the pump takes over, an error here (a reset while the backend connects)
    // only ends this connection; the pump adds its own handler afterwards.
    client.on('error', this.onEarlyClientError);

    if (this.trustedProxies !== undefined && this.trustedProxies.check(connection.sourceAddress, isIPv6(connection.sourceAddress) ? 'ipv6' : 'ipv4')) {
      readProxyHeader(client, this.config.timeouts.connectMs, (error, proxied) => {
        if (error !== undefined) {
          this.rejectProxyHeader(connection, error);
          return;
        }
        if (proxied !== undefined) {
          connection.proxied = proxied;
          connection.sourceAddress = proxied.sourceAddress;
          connection.sourcePort = proxied.sourcePort;
        }
        this.admit(connection);
      });
      return;
    }
    this.admit(connection);
  };

  /** Records a new client connection in the list of open ones and returns it. */
  private accept(client: Socket | HandleClient, sourceAddress: string, sourcePort: number): Connection {
    // The primary can hand over a connection it accepted just before this worker
    // closed its listener; it is served like any other.
    if (this.draining) this.acceptedWhileDraining++;
    const connection: Connection = {
      client,
      sourceAddress,
      sourcePort,
      proxied: undefined,
      backendSocket: undefined,
      backend: undefined,
      pump: undefined,
      acceptedAt: Date.now(),
      countedClient: undefined,
      previous: undefined,
      next: undefined,
      listed: false,
    };
    this.connections.add(connection);
    return connection;
  }

  /** Applies the per-client limit, then starts the connection or queues it behind earlier waiters. */
  private admit(connection: Connection): void {
    const perClient = this.config.maxConnectionsPerClient;
    if (perClient !== null) {
      const client = connection.sourceAddress;
      const own = this.clientCounts.get(client) ?? 0;
      const others = this.othersClients.get(client) ?? 0;
      if (!allowsOneMore(own, others, perClient, this.limitView)) {
        const open = own + others;
        this.rejectConnection(connection, 'client_limit', `client already has ${open} connections open; the limit is ${perClient}`);
        return;
      }
      this.clientCounts.set(client, (this.clientCounts.get(client) ?? 0) + 1);
      connection.countedClient = client;
      this.onLoadChange('up');
    }

    const tried = new Set<BalancedBackend>();
    const result = this.queue.length > 0 ? 'full' : this.tryStart(connection, tried);
    if (result === 'full') this.enqueue(connection, tried, false);
    else if (result === 'no_backend') this.rejectNoBackend(connection, tried.size);
  }

  /**
   * Starts a connect to the next selectable backend. Returns `full` when the
   * service or every untried backend that is up is at its connection limit.
   */
  private tryStart(connection: Connection, tried: Set<BalancedBackend>): StartResult {
    const serviceLimit = this.config.maxConnections;
    if (serviceLimit !== null && !this.serviceAllowsOneMore(serviceLimit)) return 'full';
    const backend = (this.balancer.pick(tried) ?? this.backupBalancer.pick(tried)) as ServiceBackend | undefined;
    if (backend !== undefined) {
      this.connectTo(connection, backend, tried);
      return 'started';
    }
    const blockedByLimit = this.backends.some((candidate) => candidate.up && !tried.has(candidate) && !isSelectable(candidate));
    return blockedByLimit ? 'full' : 'no_backend';
  }

  private serviceAllowsOneMore(limit: number): boolean {
    let own = 0;
    let others = 0;
    for (const backend of this.backends) {
      own += backend.active;
      others += backend.othersActive;
    }
    return allowsOneMore(own, others, limit, this.limitView);
  }

  /** Queues a connection; a retry after a failed connect goes first because it arrived earlier. */
  private enqueue(connection: Connection, tried: Set<BalancedBackend>, first: boolean): void {
    if (this.queue.length >= this.config.maxQueued) {
      this.rejectConnection(connection, 'queue_full', `${this.queue.length} connections are already waiting for a slot`);
      return;
    }
    const timer = setTimeout(() => {
      const index = this.queue.findIndex((waiter) => waiter.connection === connection);
      if (index !== -1) this.queue.splice(index, 1);
      this.rejectConnection(connection, 'queue_timeout', `no slot opened within ${this.config.timeouts.queueMs} ms`);
    }, this.config.timeouts.queueMs);
    const waiter = { connection, tried, timer };
    if (first) this.queue.unshift(waiter);
    else this.queue.push(waiter);
  }

  /**
   * Starts waiting connections, oldest first, while slots are free. Closing a
   * waiter calls back into this method through forget(), so a nested call only
   * sets a flag for the running one to loop again, which keeps the stack flat.
   */
  private processQueue(): void {
    if (this.processingQueue) {
      this.queueChanged = true;
      return;
    }
    this.processingQueue = true;
    try {
      do {
        this.queueChanged = false;
        this.startWaiters();
      } while (this.queueChanged);
    } finally {
      this.processingQueue = false;
    }
  }

  private startWaiters(): void {
    while (this.queue.length > 0) {
      const waiter = this.queue[0]!;
      if (waiter.connection.client.destroyed) {
        this.queue.shift();
        clearTimeout(waiter.timer);
        this.forget(waiter.connection);
        continue;
      }
      const result = this.tryStart(waiter.connection, waiter.tried);
      if (result === 'full') return;
      this.queue.shift();
      clearTimeout(waiter.timer);
      if (result === 'no_backend') this.rejectNoBackend(waiter.connection, waiter.tried.size);
    }
  }

  private scheduleQueueRetry(): void {
    if (this.queueRetryTimer !== undefined) return;
    this.queueRetryTimer = setTimeout(() => {
      this.queueRetryTimer = undefined;
      this.processQueue();
    }, QUEUE_RETRY_DELAY_MS);
    this.queueRetryTimer.unref();
  }

  /** Closes a connection turned away by a limit, counts it and logs it (rate-limited). */
  private rejectConnection(connection: Connection, reason: CloseReason, detail: string): void {
    this.metrics.countServiceError(this.config.name, reason);
    const suppressed = this.logLimiter.admit(reason);
    if (suppressed !== undefined) {
      this.log.warn({ client: clientAddress(connection), reason, detail, suppressed }, 'closing the client connection: limit reached');
    }
    connection.client.destroy();
    this.forget(connection);
  }

  private rejectProxyHeader(connection: Connection, error: Error): void {
    this.metrics.countServiceError(this.config.name, 'proxy_protocol');
    const suppressed = this.logLimiter.admit('proxy_protocol');
    if (suppressed !== undefined) {
      this.log.warn(
        { client: clientAddress(connection), reason: 'proxy_protocol', err: error, suppressed },
        'closing a client from a trusted network without a valid PROXY protocol header',
      );
    }
    connection.client.destroy();
    this.forget(connection);
  }

  private readonly onEarlyClientError = (error: Error): void => {
    this.log.debug({ err: error }, 'client error before the backend connected');
  };

  /** Adds the bytes that open connections moved since the last call to the byte counters. */
  flushByteCounts(): void {
    for (const connection of this.connections.toArray()) {
      if (connection.pump === undefined || connection.backend === undefined) continue;
      connection.pump.countBytes(connection.backend.metrics.stats);
    }
  }

  /** Connects `connection` to `backend`; on failure tries the next backend, skipping those in `tried`. */
  private connectTo(connection: Connection, backend: ServiceBackend, tried: Set<BalancedBackend>): void {
    tried.add(backend);
    backend.picks++;
    this.changeActive(backend, 1);
    const startedAt = Date.now();
    const client = connection.client;
    const timeoutMs = this.config.timeouts.connectMs;

    if (client instanceof HandleClient) {
      const handles = client.handles;
      connection.backendSocket = connectBackendHandle(handles, backend.config, timeoutMs, (error, handle) => {
        connection.backendSocket = undefined;
        if (error !== undefined || handle === undefined) {
          this.onConnectFailed(connection, backend, tried, error, startedAt);
          return;
        }
        if (client.destroyed) {
          // Aborted by a drain deadline while connecting.
          this.changeActive(backend, -1);
          handle.close();
          this.forget(connection);
          return;
        }
        const proxyProtocol = backend.config.proxyProtocol;
        const preface = proxyProtocol === null ? undefined : encodeProxyHeader(proxyProtocol, client.addresses());
        this.onConnected(connection, backend, startedAt);
        const options = { idleMs: this.config.timeouts.idleMs, preface };
        connection.pump = new HandlePump(handles, client.handle, handle, options, (result) => this.onPumpClosed(connection, backend, result));
      });
      return;
    }

    connection.backendSocket = connectBackend(backend.config, timeoutMs, (error, socket) => {
      if (error !== undefined || socket === undefined) {
        connection.backendSocket = undefined;
        this.onConnectFailed(connection, backend, tried, error, startedAt);
        return;
      }
      if (client.destroyed) {
        // Aborted by a drain deadline while connecting.
        this.changeActive(backend, -1);
        socket.destroy();
        this.forget(connection);
        return;
      }
      client.off('error', this.onEarlyClientError);
      const proxyProtocol = backend.config.proxyProtocol;
      if (proxyProtocol !== null) socket.write(encodeProxyHeader(proxyProtocol, connection.proxied ?? socketAddresses(client)));
      this.onConnected(connection, backend, startedAt);
      connection.pump = new Pump(client, socket, { idleMs: this.config.timeouts.idleMs }, (result) => this.onPumpClosed(connection, backend, result));
    });
  }

  /** Counts a failed connect, then tries the next backend or queues the connection. */
  private onConnectFailed(connection: Connection, backend: ServiceBackend, tried: Set<BalancedBackend>, error: Error | undefined, startedAt: number): void {
    this.changeActive(backend, -1);
    if (connection.client.destroyed) {
      // Aborted by a drain deadline: not a failure of the backend.
      this.forget(connection);
      return;
    }
    const reason = error === undefined ? 'other' : reasonForError(error);
    backend.metrics.countError(reason);
    this.reportOutcome(backend, false, reason);
    this.logBackendFailure(backend, error, Date.now() - startedAt);
    const retry = this.tryStart(connection, tried);
    // A waiting connection drops the failed backend from its tried set, so it
    // cannot block the queue head once that backend has free slots again. No event announces
    // that the backend recovered, so the queue is tried again after a short delay.
    if (retry === 'full') {
      this.enqueue(connection, new Set(), true);
      this.scheduleQueueRetry();
    }
    else if (retry === 'no_backend') this.rejectNoBackend(connection, tried.size);
  }

  private onConnected(connection: Connection, backend: ServiceBackend, startedAt: number): void {
    const stats = backend.metrics.stats;
    stats.connections++;
    stats.open++;
    stats.connectDuration.observe((Date.now() - startedAt) / 1000);
    connection.backend = backend;
  }

  private onPumpClosed(connection: Connection, backend: ServiceBackend, result: PumpResult): void {
    const stats = backend.metrics.stats;
    this.changeActive(backend, -1);
    stats.open--;
    connection.pump?.countBytes(stats);
    if (result.reason !== 'client_end' && result.reason !== 'backend_end') backend.metrics.countError(result.reason);
    // A connect alone proves little (a backend may accept and then reset every
    // connection), so only a connection that ended cleanly clears reported failures.
    if (result.side === 'backend' && result.reason === 'reset') this.reportOutcome(backend, false, 'reset');
    else if (backend.reportedFailure && (result.reason === 'client_end' || result.reason === 'backend_end')) {
      this.reportOutcome(backend, true, result.reason);
    }
    this.onConnectionClosed(connection, backend, result);
  }

  private changeActive(backend: ServiceBackend, delta: number): void {
    backend.active += delta;
    if (backend.active === 0 && this.removedBackends.get(backend.config.address) === backend) {
      this.removedBackends.delete(backend.config.address);
    }
    if (this.usesClusterCounts) this.onLoadChange(delta > 0 ? 'up' : 'down');
    else if (this.sharesPicks && delta > 0) this.onLoadChange('picks');
  }

  private reportOutcome(backend: ServiceBackend, ok: boolean, reason: CloseReason): void {
    backend.reportedFailure = !ok;
    this.reportTraffic(backend.config.address, ok, reason);
  }

  private rejectNoBackend(connection: Connection, tried: number): void {
    this.metrics.countServiceError(this.config.name, 'no_backend');
    const suppressed = this.logLimiter.admit('no_backend');
    if (suppressed !== undefined) {
      this.log.warn(
        { client: clientAddress(connection), backendsTried: tried, reason: 'no_backend', suppressed },
        'no backend available; closing the client connection',
      );
    }
    connection.client.destroy();
    this.forget(connection);
  }

  private logBackendFailure(backend: BalancedBackend, error: Error | undefined, elapsedMs: number): void {
    const reason: CloseReason = error === undefined ? 'other' : reasonForError(error);
    const suppressed = this.logLimiter.admit(`connect:${backend.config.address}:${reason}`);
    if (suppressed === undefined) return;
    this.log.warn(
      { backend: backend.config.address, reason, err: error, elapsedMs, suppressed },
      'backend connect failed',
    );
  }

  private onConnectionClosed(connection: Connection, backend: BalancedBackend, result: PumpResult): void {
    this.forget(connection);
    const durationMs = Date.now() - connection.acceptedAt;
    this.connectionDuration.observe(durationMs / 1000);
    if (this.config.accessLog) {
      this.log.info(closedFields(connection, backend, result, durationMs), 'connection closed');
    } else if (result.error !== undefined) {
      const suppressed = this.logLimiter.admit(`pump:${result.side}:${result.reason}`);
      if (suppressed !== undefined) {
        this.log.info({ ...closedFields(connection, backend, result, durationMs), suppressed }, 'connection closed by an error');
      }
    } else if (this.log.isLevelEnabled('debug')) {
      this.log.debug(closedFields(connection, backend, result, durationMs), 'connection closed');
    }
  }

  private abortConnection(connection: Connection): void {
    if (connection.pump !== undefined) {
      connection.pump.abort('drain');
      return;
    }
    connection.client.destroy();
    connection.backendSocket?.destroy();
  }

  private forget(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    const client = connection.countedClient;
    if (client !== undefined) {
      connection.countedClient = undefined;
      const remaining = (this.clientCounts.get(client) ?? 1) - 1;
      if (remaining > 0) this.clientCounts.set(client, remaining);
      else this.clientCounts.delete(client);
      this.onLoadChange('down');
    }
    this.processQueue();
    if (this.connections.size === 0 && this.onEmpty !== undefined) {
      const onEmpty = this.onEmpty;
      this.onEmpty = undefined;
      onEmpty();
    }
  }
}

/**
 * Returns whether selection depends on the other workers' connections: the
 * `least_connections` algorithm and the connection limits use cluster-wide counts.
 */
function dependsOnClusterCounts(config: ServiceConfig): boolean {
  return (
    config.algorithm === 'least_connections' ||
    config.maxConnections !== null ||
    config.maxConnectionsPerClient !== null ||
    config.backends.some((backend) => backend.maxConnections !== null)
  );
}

/** Returns whether the workers share their picks: round-robin with more than one worker. */
function sharesRoundRobinPicks(config: ServiceConfig, view: LimitView): boolean {
  return config.algorithm === 'round_robin' && view.workers > 1;
}

function socketAddresses(socket: Socket): ProxiedAddresses {
  return {
    sourceAddress: normalizeAddress(socket.remoteAddress ?? ''),
    sourcePort: socket.remotePort ?? 0,
    destinationAddress: normalizeAddress(socket.localAddress ?? ''),
    destinationPort: socket.localPort ?? 0,
  };
}

/** Returns the fields of a "connection closed" line. pino leaves out `err` when it is undefined. */
function closedFields(connection: Connection, backend: BalancedBackend, result: PumpResult, durationMs: number): Record<string, unknown> {
  return {
    client: clientAddress(connection),
    backend: backend.config.address,
    bytesUpstream: result.bytesUpstream,
    bytesDownstream: result.bytesDownstream,
    durationMs,
    reason: result.reason,
    side: result.side,
    err: result.error,
  };
}

/** Returns `host:port` of the original client, for a log line that names it. */
function clientAddress(connection: Connection): string {
  const host = connection.sourceAddress;
  if (host === '') return 'unknown';
  return host.includes(':') ? `[${host}]:${connection.sourcePort}` : `${host}:${connection.sourcePort}`;
}

function createBlockList(networks: readonly string[] | null): BlockList | undefined {
  if (networks === null) return undefined;
  const list = new BlockList();
  for (const network of networks) {
    const [address = '', prefix = ''] = network.split('/');
    list.addSubnet(address, Number(prefix), isIPv6(address) ? 'ipv6' : 'ipv4');
  }
  return list;
}
