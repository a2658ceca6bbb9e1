// Parsing of the addresses a config names: "host:port", "[ipv6]:port", and bare
// ports for listen and metrics. Used by validation and by the runtime.
import { isIP, isIPv6 } from 'node:net';
import { formatEndpoint } from './endpoint.js';
import type { Endpoint } from './types.js';

export interface AddressRules {
  /** Host for a bare port (`8000` or `"8000"`) and for `":8000"`. Without it a bare port is rejected. */
  readonly defaultHost?: string;
  /** Accept port 0, which lets the OS pick a free port. Only listening addresses allow it. */
  readonly allowPortZero?: boolean;
  /** Reject hostnames, because a listening socket binds to an IP address. */
  readonly requireIp?: boolean;
}

/**
 * The outcome of `parseAddress`. On failure, `problem` describes the expected
 * input and is phrased to follow a setting name: `must have a port from 1 to 65535`.
 */
export type AddressResult =
  | { readonly ok: true; readonly endpoint: Endpoint; readonly address: string }
  | { readonly ok: false; readonly problem: string };

const MAX_PORT = 65_535;
const MAX_HOSTNAME_LENGTH = 253;

/**
 * A DNS name as RFC 1123 allows it, plus `_`, which container runtimes accept in
 * service names. The last label must not be all digits, so a mistyped IPv4
 * address such as `10.0.0.256` is not taken for a hostname.
 */
const HOSTNAME = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*(?=[a-z0-9_-]*[a-z_-])[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.?$/i;

/**
 * Parses an address written as `"host:port"`, `"[ipv6]:port"`, or (when
 * `rules.defaultHost` is set) a bare port as an integer or numeric string.
 * Hostnames are kept as written, in lower case; they are resolved at connect time.
 *
 * @returns the endpoint and its canonical `host:port` form, or the problem found.
 */
export function parseAddress(input: string | number, rules: AddressRules = {}): AddressResult {
  const portProblem = describePortRange(rules.allowPortZero === true);
  if (typeof input === 'number' || /^\d+$/.test(input)) {
    if (rules.defaultHost === undefined) return failure('must be "host:port" with a host before the port');
    const port = parsePort(input, rules.allowPortZero === true);
    return port === null ? failure(portProblem) : success(rules.defaultHost, port);
  }

  if (input.includes('://')) return failure('must be "host:port" without a URL scheme');
  const split = splitHostPort(input);
  if (!split.ok) return split;
  const { host, portText, bracketed } = split;

  const port = parsePort(portText, rules.allowPortZero === true);
  if (port === null) return failure(portText === '' ? 'must be "host:port" with a port after the colon' : portProblem);

  if (host === '' && !bracketed) {
    if (rules.defaultHost === undefined) return failure('must be "host:port" with a host before the port');
    return success(rules.defaultHost, port);
  }
  if (rules.requireIp === true && isIP(host) === 0) {
    return failure('must have an IP address as host, such as "0.0.0.0:8000" or "[::]:8000", because a listening socket binds to an address');
  }
  const normalized = bracketed ? host.toLowerCase() : parseHost(host);
  if (normalized === null) return failure('must have a valid hostname or IP address before the port');
  return success(normalized, port);
}

/**
 * Parses a port given as an integer or a string of digits.
 *
 * @returns the port, or null when it is not a whole number from 1 (0 when `allowZero`) to 65535.
 */
export function parsePort(input: string | number, allowZero: boolean): number | null {
  let port: number;
  if (typeof input === 'number') port = input;
  else if (/^\d{1,5}$/.test(input)) port = Number(input);
  else return null;
  const min = allowZero ? 0 : 1;
  return Number.isInteger(port) && port >= min && port <= MAX_PORT ? port : null;
}

/**
 * Checks a host given on its own: an IPv4 address, an IPv6 address with or
 * without brackets, or a hostname.
 *
 * @returns the host in lower case without brackets, or null when it is not valid.
 */
export function parseHost(input: string): string | null {
  const unbracketed = input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input;
  if (unbracketed !== input && !isIPv6(unbracketed)) return null;
  if (isIP(unbracketed) !== 0) return unbracketed.toLowerCase();
  if (unbracketed.length > MAX_HOSTNAME_LENGTH || !HOSTNAME.test(unbracketed)) return null;
  return unbracketed.toLowerCase();
}

/** Phrase for a bad port, shared by addresses and the legacy port settings. */
export function describePortRange(allowZero: boolean): string {
  return allowZero ? 'must have a port from 0 to 65535 (0 picks a free port)' : 'must have a port from 1 to 65535';
}

type HostPortSplit =
  | { readonly ok: true; readonly host: string; readonly bracketed: boolean; readonly portText: string }
  | { readonly ok: false; readonly problem: string };

/** Splits `host:port` or `[ipv6]:port` at the colon before the port, without checking either part. */
function splitHostPort(input: string): HostPortSplit {
  if (input.startsWith('[')) {
    const close = input.indexOf(']');
    if (close === -1 || input[close + 1] !== ':') return failure('must be "[ipv6]:port", with the port after the closing bracket');
    const host = input.slice(1, close);
    if (!isIPv6(host)) return failure('must have an IPv6 address inside the brackets');
    return { ok: true, host, bracketed: true, portText: input.slice(close + 2) };
  }

  const colon = input.lastIndexOf(':');
  if (colon === -1) return failure('must be "host:port", but the port is missing');
  if (input.indexOf(':') !== colon) return failure('must put an IPv6 address in brackets, such as "[::1]:8000"');
  return { ok: true, host: input.slice(0, colon), bracketed: false, portText: input.slice(colon + 1) };
}

function success(host: string, port: number): AddressResult {
  const endpoint = { host, port };
  return { ok: true, endpoint, address: formatEndpoint(endpoint) };
}

function failure(problem: string): { readonly ok: false; readonly problem: string } {
  return { ok: false, problem };
}
