// Config text and clients for the connection limit and cluster-wide balancing
// tests: services with `max_connections` on backends and services, the per-client
// limit and the wait queue, and client connections that record what happened to
// them (the backend's reply line, the end) while the test does other things.
import type { Socket } from 'node:net';
import { openConnection } from './client.js';
import { luaString } from './config.js';
import { pidHoldingConnection } from './sockets.js';
import { waitFor } from './wait.js';

/** A backend entry of a service; the config leaves out each field that is unset. */
export interface LimitedBackend {
  readonly address: string;
  readonly weight?: number;
  readonly maxConnections?: number;
}

/** One service of the config. Unset limits are left out, so rsp's defaults apply. */
export interface LimitedService {
  readonly backends: readonly LimitedBackend[];
  /** Default `round_robin`. */
  readonly algorithm?: 'round_robin' | 'least_connections';
  readonly maxConnections?: number;
  readonly maxConnectionsPerClient?: number;
  readonly maxQueued?: number;
}

/** Timeouts in seconds, written at top level so that every service uses them. */
export interface LimitTimeouts {
  readonly connect: number;
  readonly idle: number;
  readonly drain: number;
  readonly queue: number;
}

const DEFAULT_TIMEOUTS: LimitTimeouts = { connect: 2, idle: 60, drain: 2, queue: 10 };

function luaBackend(backend: LimitedBackend): string {
  const fields = [`address = ${luaString(backend.address)}`];
  if (backend.weight !== undefined) fields.push(`weight = ${backend.weight}`);
  if (backend.maxConnections !== undefined) fields.push(`max_connections = ${backend.maxConnections}`);
  return `{ ${fields.join(', ')} }`;
}

function luaService(service: LimitedService): string {
  const fields = [
    `listen = ${luaString('127.0.0.1:0')}`,
    `algorithm = ${luaString(service.algorithm ?? 'round_robin')}`,
    `backends = { ${service.backends.map(luaBackend).join(', ')} }`,
  ];
  if (service.maxConnections !== undefined) fields.push(`max_connections = ${service.maxConnections}`);
  if (service.maxConnectionsPerClient !== undefined) fields.push(`max_connections_per_client = ${service.maxConnectionsPerClient}`);
  if (service.maxQueued !== undefined) fields.push(`max_queued = ${service.maxQueued}`);
  return `{ ${fields.join(', ')} }`;
}

/**
 * Returns the Lua text of a `services` table, each service listening on
 * `127.0.0.1:0`, with metrics on `127.0.0.1:0`. Unset timeouts default to connect 2,
 * idle 60, drain 2 and queue 10 seconds.
 */
export function limitsConfig(services: Readonly<Record<string, LimitedService>>, timeouts: Partial<LimitTimeouts> = {}): string {
  const seconds = { ...DEFAULT_TIMEOUTS, ...timeouts };
  const lines = [
    `metrics = ${luaString('127.0.0.1:0')}`,
    `timeouts = { connect = ${seconds.connect}, idle = ${seconds.idle}, drain = ${seconds.drain}, queue = ${seconds.queue} }`,
    'services = {',
  ];
  for (const [name, service] of Object.entries(services)) lines.push(`  ${name} = ${luaService(service)},`);
  lines.push('}', '');
  return lines.join('\n');
}

/**
 * A client connection that records, from the moment it connects, the text it
 * receives and how its read side finished. Tests poll it instead of reading, so no
 * byte is lost between two checks.
 */
export class WatchedClient {
  readonly socket: Socket;
  /** `Date.now()` when the TCP connect completed. */
  readonly connectedAt: number;
  private text = '';
  private lineReceivedAt: number | undefined;
  private endReason: string | undefined;
  private endedAtTime: number | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    this.connectedAt = Date.now();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.text += chunk;
      if (this.lineReceivedAt === undefined && this.text.includes('\n')) this.lineReceivedAt = Date.now();
    });
    socket.once('end', () => this.recordEnd('end'));
    socket.once('error', (error: NodeJS.ErrnoException) => this.recordEnd(error.code ?? error.message));
    socket.once('close', () => this.recordEnd('close'));
  }

  /** The text before the first newline, such as an identify backend's name, or undefined before a full line. */
  get line(): string | undefined {
    const newline = this.text.indexOf('\n');
    return newline === -1 ? undefined : this.text.slice(0, newline);
  }

  /** Everything received so far. */
  get received(): string {
    return this.text;
  }

  /** `Date.now()` when the first full line arrived. */
  get lineAt(): number | undefined {
    return this.lineReceivedAt;
  }

  /** `end` for a FIN, the error code (such as `ECONNRESET`) for an error, `close` for neither; undefined while open. */
  get endedBy(): string | undefined {
    return this.endReason;
  }

  /** `Date.now()` when the read side finished. */
  get endedAt(): number | undefined {
    return this.endedAtTime;
  }

  /** Resolves with the first line. Rejects after `timeoutMs` with what arrived and how the connection ended. */
  waitForLine(timeoutMs = 5_000): Promise<string> {
    return waitFor('a reply line', () => this.line, timeoutMs, () => this.describe());
  }

  /** Resolves with `endedBy` once the read side has finished. Rejects after `timeoutMs`. */
  waitForEnd(timeoutMs = 5_000): Promise<string> {
    return waitFor('the connection to end', () => this.endReason, timeoutMs, () => this.describe());
  }

  /** Received text and end state, for assertion messages. */
  describe(): string {
    return `received ${JSON.stringify(this.text)}, ended by ${this.endReason ?? 'nothing yet'}`;
  }

  private recordEnd(reason: string): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    this.endedAtTime = Date.now();
  }
}

/**
 * Owns the client connections of one test, so a single teardown destroys them all.
 * Register `destroyAll` with `t.after` before rsp's stop, so that rsp's drain does
 * not wait for connections the test keeps open.
 */
export class ClientSet {
  private readonly clients = new Set<WatchedClient>();

  /** Connects to 127.0.0.1:`port`; the connection is watched from the start. */
  async connect(port: number): Promise<WatchedClient> {
    const socket = await openConnection(port);
    const client = new WatchedClient(socket);
    this.clients.add(client);
    return client;
  }

  /** Connects and waits for the first line, which an identify backend sends when it accepts. */
  async connectServed(port: number, timeoutMs = 5_000): Promise<WatchedClient> {
    const client = await this.connect(port);
    await client.waitForLine(timeoutMs);
    return client;
  }

  /** Destroys every connection opened through this set. Safe to call more than once. */
  destroyAll(): void {
    for (const client of this.clients) client.socket.destroy();
  }
}

/**
 * Resolves with the member of `workerPids` that has open the rsp side of `client`'s
 * connection to rsp's `listenPort`. The TCP handshake completes before the cluster
 * hands the socket to a worker, so this polls. Rejects when no worker has it open
 * within 2 s.
 */
export function workerHolding(client: WatchedClient, listenPort: number, workerPids: readonly number[]): Promise<number> {
  const clientPort = client.socket.localPort;
  return waitFor(
    `a worker holding the connection from client port ${String(clientPort)}`,
    () => (clientPort === undefined ? undefined : pidHoldingConnection(listenPort, clientPort, workerPids)),
    2_000,
    () => `workers: ${workerPids.join(', ')}`,
  );
}

/** Counts how often each name occurs, in order of first occurrence. */
export function countNames(names: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  return counts;
}
