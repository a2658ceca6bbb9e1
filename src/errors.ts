// Error types and the catalogue of stable error codes. Callers branch on `code`,
// never on message text; the README lists every code.

export const ErrorCodes = {
  /** The config file failed validation; `ConfigError.issues` lists every problem. */
  CONFIG_INVALID: 'RSP_ERR_CONFIG_INVALID',
  /** The config file could not be read (missing, unreadable). */
  CONFIG_READ: 'RSP_ERR_CONFIG_READ',
  /** The Lua chunk failed to compile or raised an error while running. */
  CONFIG_LUA: 'RSP_ERR_CONFIG_LUA',
  /** The Lua chunk did not finish within the instruction budget. */
  CONFIG_BUDGET: 'RSP_ERR_CONFIG_BUDGET',
  /** A listen socket could not be opened (address in use, permission denied). */
  LISTEN: 'RSP_ERR_LISTEN',
  /** No backend of a service could be reached for a connection. */
  NO_BACKEND: 'RSP_ERR_NO_BACKEND',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class RspError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

const LISTEN_ADVICE: Readonly<Record<string, string>> = {
  EADDRINUSE: 'another process listens there; stop it or choose another address',
  EACCES: 'permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE',
  EADDRNOTAVAIL: 'the address is not assigned to this machine',
};

/** Builds the error for a listen socket that could not be opened, with advice for common errno codes. */
export function listenError(what: string, address: string, errno: string | undefined, detail: string): RspError {
  const advice = errno === undefined ? undefined : LISTEN_ADVICE[errno];
  const message = `${what} failed to listen on ${address}: ${advice ?? detail}${advice === undefined ? '' : ` (${errno})`}`;
  return new RspError(ErrorCodes.LISTEN, message);
}

/** One problem found in a config file. `message` is the full line shown to the operator. */
export interface ConfigIssue {
  /** The config file path as the operator gave it. */
  readonly file: string;
  /** Field path in Lua terms, such as `backends[2].weight`; empty for file-level problems. */
  readonly path: string;
  /** The complete message, such as `site.lua: backends[2].weight must be a positive integer, got -1`. */
  readonly message: string;
}

/** A config that cannot be used. The message joins every issue, one per line. */
export class ConfigError extends RspError {
  readonly issues: readonly ConfigIssue[];

  constructor(code: ErrorCode, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(code, issues.map((issue) => issue.message).join('\n'), options);
    this.issues = issues;
  }
}
