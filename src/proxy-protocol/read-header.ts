// Reads a PROXY protocol header from the start of a paused client socket,
// leaving every byte after the header in the socket for the pump.
import type { Socket } from 'node:net';
import { parseProxyHeader, type ProxiedAddresses } from './header.js';

export class ProxyHeaderError extends Error {
  readonly code = 'RSP_ERR_PROXY_HEADER';

  constructor(message: string) {
    super(message);
    this.name = 'ProxyHeaderError';
  }
}

/**
 * Resumes `socket`, reads one v1 or v2 header and pauses it again. Calls
 * `callback` once: with the addresses (undefined for UNKNOWN or LOCAL headers),
 * or with an error for a malformed or missing header, a timeout or an early close.
 * A FIN right after the header may emit 'end' before a later reader attaches, so
 * that reader must check `socket.readableEnded` first.
 */
export function readProxyHeader(
  socket: Socket,
  timeoutMs: number,
  callback: (error: Error | undefined, addresses: ProxiedAddresses | undefined) => void,
): void {
  let received: Buffer = Buffer.alloc(0);
  let settled = false;

  const settle = (error: Error | undefined, addresses: ProxiedAddresses | undefined, rest: Buffer | undefined): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onError);
    socket.pause();
    if (rest !== undefined && rest.length > 0) socket.unshift(rest);
    callback(error, addresses);
  };
  const onData = (chunk: Buffer): void => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const result = parseProxyHeader(received);
    if (result.status === 'incomplete') return;
    if (result.status === 'invalid') {
      settle(new ProxyHeaderError(`invalid PROXY protocol header: ${result.problem}`), undefined, undefined);
      return;
    }
    settle(undefined, result.addresses, received.subarray(result.length));
  };
  const onEnd = (): void => settle(new ProxyHeaderError('the connection closed before a complete PROXY protocol header'), undefined, undefined);
  const onError = (error: Error): void => settle(error, undefined, undefined);
  const timer = setTimeout(
    () => settle(new ProxyHeaderError(`no complete PROXY protocol header within ${timeoutMs} ms`), undefined, undefined),
    timeoutMs,
  );

  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('error', onError);
  socket.resume();
}
