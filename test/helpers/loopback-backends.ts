// Backends that listen on one port at several loopback addresses (127.0.0.1,
// 127.0.0.2, ...), so one `hostname:port` backend can resolve to any of them. On
// Linux the whole of 127.0.0.0/8 is loopback, and each server binds its own address.
import { createServer, type Server, type Socket } from 'node:net';

/** How many ports to try before giving up when another process uses the chosen port on one of the addresses. */
const BIND_ATTEMPTS = 5;

export interface LoopbackBackend {
  readonly host: string;
  /** `host:port` as rsp labels it, with brackets around an IPv6 host. */
  readonly address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections still open. */
  readonly openConnections: number;
}

export interface LoopbackBackendGroup {
  /** The port every server of the group listens on. */
  readonly port: number;
  /** The server on `host`. Throws for a host the group was not started with. */
  backend(host: string): LoopbackBackend;
  /** Destroys the open connections and closes every server. Safe to call more than once. */
  close(): Promise<void>;
}

interface ListeningBackend extends LoopbackBackend {
  readonly server: Server;
  readonly sockets: Set<Socket>;
}

/**
 * Replies with the server's own IP address and a newline, so a client sees which
 * address served it, then echoes every byte and ends after the client's EOF.
 */
function onConnection(socket: Socket, sockets: Set<Socket>): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  // rsp resets or destroys connections in some cases, and the tests check replies, not backend errors.
  socket.on('error', () => {});
  socket.write(`${socket.localAddress ?? 'unknown'}\n`);
  socket.pipe(socket);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(backend: ListeningBackend): Promise<void> {
  for (const socket of backend.sockets) socket.destroy();
  return new Promise((resolve) => {
    if (!backend.server.listening) {
      resolve();
      return;
    }
    backend.server.close(() => resolve());
  });
}

/** Starts one server on `host` and `port` (0 for a free port). Rejects with the listen error. */
async function startOne(host: string, port: number): Promise<ListeningBackend> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted += 1;
    onConnection(socket, sockets);
  });
  await listen(server, port, host);
  const boundPort = (server.address() as { port: number }).port;
  return {
    host,
    address: host.includes(':') ? `[${host}]:${boundPort}` : `${host}:${boundPort}`,
    server,
    sockets,
    get accepted() {
      return accepted;
    },
    get openConnections() {
      return sockets.size;
    },
  };
}

/**
 * Starts a server on each of `hosts`, all on the same port. The first host picks a
 * free port and the others bind it too. The caller owns the group and must call
 * `close()`. Rejects when no port was free on every host after 5 attempts.
 */
export async function startLoopbackBackends(hosts: readonly string[]): Promise<LoopbackBackendGroup> {
  const [firstHost, ...otherHosts] = hosts;
  if (firstHost === undefined) throw new Error('startLoopbackBackends needs at least one host');

  let lastError: unknown;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const first = await startOne(firstHost, 0);
    const port = (first.server.address() as { port: number }).port;
    const started: ListeningBackend[] = [first];
    try {
      for (const host of otherHosts) started.push(await startOne(host, port));
    } catch (error) {
      lastError = error;
      await Promise.all(started.map(closeServer));
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
      throw error;
    }

    const byHost = new Map(started.map((backend) => [backend.host, backend]));
    let closing: Promise<void> | undefined;
    return {
      port,
      backend(host) {
        const found = byHost.get(host);
        if (found === undefined) throw new Error(`No loopback backend on ${host}; the group has ${hosts.join(', ')}`);
        return found;
      },
      close() {
        closing ??= Promise.all(started.map(closeServer)).then(() => undefined);
        return closing;
      },
    };
  }
  throw new Error(`No port was free on every one of ${hosts.join(', ')} after ${BIND_ATTEMPTS} attempts`, { cause: lastError });
}
