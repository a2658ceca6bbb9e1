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
import { createServer } from 'node:net';
import { runFloorProxy } from './lib/floor-proxy.mjs';

/** Bytes queued towards one socket at which the other stops reading, as net.Socket's default high-water mark. */
const HIGH_WATER_BYTES = 16 * 1024;

runFloorProxy('bench/handle-proxy.mjs', 'handle proxy', serve);

function serve({ port, backends, onListening }) {
  const { TCP, TCPConnectWrap, constants } = process.binding('tcp_wrap');
  const { WriteWrap, ShutdownWrap, streamBaseState, kReadBytesOrError } = process.binding('stream_wrap');
  const { UV_EOF } = process.binding('uv');
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
  server.listen(port, '127.0.0.1', () => {
    server._handle.onconnection = onConnection;
    onListening(server.address().port);
  });
}
