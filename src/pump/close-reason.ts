// The reasons a connection ends. Each reason is also the `reason` label value of
// rsp_connection_errors_total and the `reason` field of log lines.

/** The side a failure came from: the client, the backend, or rsp itself. */
export type Side = 'client' | 'backend' | 'internal';

export type CloseReason =
  /** The client sent FIN first and both directions then finished cleanly. */
  | 'client_end'
  /** The backend sent FIN first and both directions then finished cleanly. */
  | 'backend_end'
  /** A peer reset the connection (ECONNRESET, EPIPE, ECONNABORTED). */
  | 'reset'
  /** A connect or a TCP retransmission timed out. */
  | 'timeout'
  /** The backend refused the connection (ECONNREFUSED). */
  | 'refused'
  /** No route to the backend (EHOSTUNREACH, ENETUNREACH). */
  | 'unreachable'
  /** The backend hostname did not resolve. */
  | 'dns'
  /** No bytes in either direction for the idle timeout. */
  | 'idle'
  /** Closed by rsp because a stop or reload drain deadline passed. */
  | 'drain'
  /** Every backend of the service failed or none was available. */
  | 'no_backend'
  /** A client from a trusted network sent no valid PROXY protocol header. */
  | 'proxy_protocol'
  /** The client address already had `max_connections_per_client` connections open. */
  | 'client_limit'
  /** Every backend was full and the wait queue too. */
  | 'queue_full'
  /** Every backend stayed full for the whole `timeouts.queue`. */
  | 'queue_timeout'
  /** Any other error; its code is logged. */
  | 'other';

const REASON_BY_ERRNO: Readonly<Record<string, CloseReason>> = {
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  ETIMEDOUT: 'timeout',
  ECONNREFUSED: 'refused',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_NONAME: 'dns',
  EAI_FAIL: 'dns',
};

/** Maps a socket error to its close reason by its errno code; unknown codes map to `other`. */
export function reasonForError(error: Error): CloseReason {
  const code = (error as NodeJS.ErrnoException).code;
  return (code !== undefined && REASON_BY_ERRNO[code]) || 'other';
}
