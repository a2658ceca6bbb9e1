// A floor for proxies on Node.js's TCP handles, the layer below net.Socket that
// rsp's data path uses (process.binding('tcp_wrap')). It accepts, connects to the
// next backend in turn, and copies bytes both ways with backpressure, passing a
// FIN on as a FIN. Every socket reads into one shared buffer, and each read's
// bytes are copied before they are written, because the next read overwrites
// them. It has nothing else: no timeouts, retries, metrics, logs or client
// address lookups. Any error resets both sockets. With --workers N above
// 1, N node:cluster workers accept from the shared socket themselves.
//   node bench/handle-proxy.mjs --port 9000 --backends 127.0.0.1:8081,127.0.0.1:8082 [--workers 2]
import { Buffer } from 'node:buffer';
import cluster from 'node:cluster';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, backends: { type: 'string' }, workers: { type: 'string', default: '1' } } });
const workers = Number(values.workers);
if (values.port === undefined || values.backends === undefined || !Number.isInteger(workers) || workers < 1) {
  console.error('usage: node bench/handle-proxy.mjs --port <port> --backends host:port[,host:port...] [--workers <n>]');
  process.exit(2);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}

/** Bytes queued towards one socket at which the other stops reading, as net.Socket's default high-water mark. */
const HIGH_WATER_BYTES = 16 * 1024;

if (workers > 1 && cluster.isPrimary) {
  // Workers exit on their own when the primary's IPC channel closes.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('listening', () => {
      if (++listening === workers) console.log(JSON.stringify({ msg: 'handle proxy listening', port: Number(values.port), workers }));
    });
  }
  cluster.on('exit', () => process.exit(1));
} else {
  serve();
}

function serve() {
  const { TCP, TCPConnectWrap, constants } = process.binding('tcp_wrap');
  const { WriteWrap, ShutdownWrap, streamBaseState, kReadBytesOrError } = process.binding('stream_wrap');
  const { UV_EOF } = process.binding('uv');
  const backends = values.backends.split(',').map((address) => {
    const colon = address.lastIndexOf(':');
    return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
  });
  let next = 0;
  const landing = Buffer.allocUnsafeSlow(64 * 1024);

  /** Closes both sockets once. With `reset`, their peers get RST. */
  const closeBoth = (handle, reset) => {
    for (const side of [handle, handle.peer]) {
      if (side === undefined || side.closed) continue;
      side.closed = true;
      if (!reset || side.reset() !== 0) side.close();
    }
  };

  function afterWrite(status) {
    const target = this.handle;
    if (target.closed) return;
    if (status < 0) {
      closeBoth(target, true);
      return;
    }
    const source = target.peer;
    if (source.blocked && target.writeQueueSize === 0) {
      source.blocked = false;
      source.readStart();
    }
  }

  function afterShutdown() {
    const target = this.handle;
    target.finished = true;
    // Both directions are done once each side's FIN has been passed on after its bytes.
    if (target.peer.finished) closeBoth(target, false);
  }

  function onRead() {
    const nread = streamBaseState[kReadBytesOrError];
    const target = this.peer;
    if (nread > 0) {
      const chunk = Buffer.from(landing.subarray(0, nread));
      const request = new WriteWrap();
      request.handle = target;
      request.oncomplete = afterWrite;
      // Keeps the bytes alive while the write is queued.
      request.buffer = chunk;
      if (target.writeBuffer(request, chunk) !== 0) {
        closeBoth(this, true);
        return;
      }
      if (target.writeQueueSize >= HIGH_WATER_BYTES) {
        this.blocked = true;
        this.readStop();
      }
      return;
    }
    if (nread === 0) return;
    if (nread !== UV_EOF) {
      closeBoth(this, true);
      return;
    }
    const request = new ShutdownWrap();
    request.handle = target;
    request.oncomplete = afterShutdown;
    if (target.shutdown(request) !== 0) closeBoth(this, true);
  }

  const pair = (client, backend) => {
    client.peer = backend;
    backend.peer = client;
    for (const handle of [client, backend]) {
      handle.useUserBuffer(landing);
      handle.onread = onRead;
      if (handle.readStart() !== 0) {
        closeBoth(handle, true);
        return;
      }
    }
  };

  const onConnection = (status, client) => {
    if (status < 0 || client === undefined) return;
    const target = backends[next];
    next = (next + 1) % backends.length;
    // Nagle's algorithm is off on both sockets, as in rsp.
    client.setNoDelay(true);
    const backend = new TCP(constants.SOCKET);
    backend.setNoDelay(true);
    const request = new TCPConnectWrap();
    request.oncomplete = (connectStatus) => {
      if (connectStatus < 0) {
        client.close();
        backend.close();
        return;
      }
      pair(client, backend);
    };
    const connect = target.host.includes(':') ? backend.connect6 : backend.connect;
    if (connect.call(backend, request, target.host, target.port) !== 0) {
      client.close();
      backend.close();
    }
  };

  const server = createServer();
  server.listen(Number(values.port), '127.0.0.1', () => {
    server._handle.onconnection = onConnection;
    if (cluster.isPrimary) console.log(JSON.stringify({ msg: 'handle proxy listening', port: server.address().port }));
  });
}
