// One active health check: a TCP connect, optionally followed by sending a
// string and matching the start of the reply.
import { connect } from 'node:net';
import type { BackendConfig, HealthCheckConfig } from '../config/types.js';
import { reasonForError } from '../pump/close-reason.js';

export interface CheckResult {
  readonly ok: boolean;
  /** `passed`, or why the check failed: a close reason (`refused`, `timeout`, ...) or `unexpected_reply`. */
  readonly reason: string;
  readonly durationMs: number;
}

/** Runs one check against `backend`; never rejects. */
export function runTcpCheck(backend: BackendConfig, check: HealthCheckConfig): Promise<CheckResult> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const socket = connect({ host: backend.host, port: backend.port, noDelay: true });
    let reply = Buffer.alloc(0);
    let settled = false;

    const finish = (ok: boolean, reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, reason, durationMs: Date.now() - startedAt });
    };
    const timer = setTimeout(() => finish(false, 'timeout'), check.timeoutMs);

    socket.once('connect', () => {
      if (check.send !== null) socket.write(check.send);
      if (check.expect === null) finish(true, 'passed');
    });
    socket.on('data', (chunk: Buffer) => {
      if (check.expect === null) return;
      reply = Buffer.concat([reply, chunk]);
      const expected = Buffer.from(check.expect);
      if (reply.length < expected.length) {
        if (!expected.subarray(0, reply.length).equals(reply)) finish(false, 'unexpected_reply');
        return;
      }
      const matched = reply.subarray(0, expected.length).equals(expected);
      finish(matched, matched ? 'passed' : 'unexpected_reply');
    });
    socket.on('end', () => finish(false, 'unexpected_reply'));
    socket.on('error', (error) => finish(false, reasonForError(error)));
  });
}
