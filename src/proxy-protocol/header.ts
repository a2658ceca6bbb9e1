// PROXY protocol headers, versions 1 (text) and 2 (binary), as HAProxy's
// specification "The PROXY protocol" (haproxy.org, doc/proxy-protocol.txt)
// defines them. Only TCP over IPv4 and IPv6 and the UNKNOWN/LOCAL forms are
// supported; v2 TLVs are skipped when parsing and never sent.
import { isIPv4, isIPv6 } from 'node:net';

export type ProxyProtocolVersion = 'v1' | 'v2';

/** The original connection a header describes: the client and the address it connected to. */
export interface ProxiedAddresses {
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** Maximum length of a v1 header ("PROXY UNKNOWN" with two IPv6 addresses and ports), including CRLF. */
const V1_MAX_LENGTH = 107;
const V2_HEADER_LENGTH = 16;
/** Largest v2 address block rsp accepts; real headers with TLVs stay far below it. */
const V2_MAX_BODY_LENGTH = 4096;

/** Strips the IPv4-mapped prefix (`::ffff:1.2.3.4` → `1.2.3.4`) that dual-stack sockets report. */
export function normalizeAddress(address: string): string {
  // Runs for every accepted client, so an address that cannot be IPv4-mapped skips the pattern.
  if (!address.startsWith('::')) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address;
}

/**
 * Builds a header for `addresses`. When the two addresses are of different
 * families (or unknown), v1 sends `PROXY UNKNOWN` and v2 the LOCAL command, which
 * tell the backend to use the connection's own addresses.
 */
export function encodeProxyHeader(version: ProxyProtocolVersion, addresses: ProxiedAddresses | undefined): Buffer {
  const source = addresses === undefined ? '' : normalizeAddress(addresses.sourceAddress);
  const destination = addresses === undefined ? '' : normalizeAddress(addresses.destinationAddress);
  const family = isIPv4(source) && isIPv4(destination) ? 4 : isIPv6(source) && isIPv6(destination) ? 6 : 0;
  if (version === 'v1') {
    if (addresses === undefined || family === 0) return Buffer.from('PROXY UNKNOWN\r\n');
    return Buffer.from(
      `PROXY TCP${family} ${source} ${destination} ${addresses.sourcePort} ${addresses.destinationPort}\r\n`,
    );
  }

  if (addresses === undefined || family === 0) {
    const header = Buffer.alloc(V2_HEADER_LENGTH);
    V2_SIGNATURE.copy(header);
    header[12] = 0x20; // version 2, command LOCAL
    header[13] = 0x00; // family UNSPEC
    header.writeUInt16BE(0, 14);
    return header;
  }
  const addressLength = family === 4 ? 4 : 16;
  const bodyLength = addressLength * 2 + 4;
  const header = Buffer.alloc(V2_HEADER_LENGTH + bodyLength);
  V2_SIGNATURE.copy(header);
  header[12] = 0x21; // version 2, command PROXY
  header[13] = family === 4 ? 0x11 : 0x21; // TCP over IPv4 or IPv6
  header.writeUInt16BE(bodyLength, 14);
  writeAddress(header, V2_HEADER_LENGTH, source, family);
  writeAddress(header, V2_HEADER_LENGTH + addressLength, destination, family);
  header.writeUInt16BE(addresses.sourcePort, V2_HEADER_LENGTH + addressLength * 2);
  header.writeUInt16BE(addresses.destinationPort, V2_HEADER_LENGTH + addressLength * 2 + 2);
  return header;
}

export type ParseResult =
  /** More bytes are needed before the header can be decided. */
  | { readonly status: 'incomplete' }
  | { readonly status: 'invalid'; readonly problem: string }
  /** `addresses` is undefined for UNKNOWN (v1) and LOCAL (v2) headers. */
  | { readonly status: 'complete'; readonly length: number; readonly addresses: ProxiedAddresses | undefined };

/** Parses a v1 or v2 header at the start of `data`. */
export function parseProxyHeader(data: Buffer): ParseResult {
  if (data.length === 0) return { status: 'incomplete' };
  if (data[0] === V2_SIGNATURE[0]) return parseV2(data);
  if (data[0] === V1_PREFIX[0]) return parseV1(data);
  return { status: 'invalid', problem: 'the data does not start with a PROXY protocol signature' };
}

function parseV1(data: Buffer): ParseResult {
  const prefixLength = Math.min(data.length, V1_PREFIX.length);
  if (!data.subarray(0, prefixLength).equals(V1_PREFIX.subarray(0, prefixLength))) {
    return { status: 'invalid', problem: 'the data does not start with a PROXY protocol signature' };
  }
  // The specification bounds the line: a CRLF beyond the first 107 bytes makes it invalid.
  const end = data.subarray(0, V1_MAX_LENGTH).indexOf('\r\n');
  if (end === -1) {
    return data.length >= V1_MAX_LENGTH
      ? { status: 'invalid', problem: `the v1 header has no CRLF within ${V1_MAX_LENGTH} bytes` }
      : { status: 'incomplete' };
  }
  const line = data.toString('latin1', 0, end);
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { status: 'complete', length: end + 2, addresses: undefined };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) {
    return { status: 'invalid', problem: `malformed v1 header "${line}"` };
  }
  const [, protocol, source, destination, sourcePort, destinationPort] = parts as [string, string, string, string, string, string];
  const validAddress = protocol === 'TCP4' ? isIPv4 : isIPv6;
  const ports = [parseV1Port(sourcePort), parseV1Port(destinationPort)];
  if (!validAddress(source) || !validAddress(destination) || ports[0] === undefined || ports[1] === undefined) {
    return { status: 'invalid', problem: `malformed v1 header "${line}"` };
  }
  return {
    status: 'complete',
    length: end + 2,
    addresses: { sourceAddress: source, sourcePort: ports[0], destinationAddress: destination, destinationPort: ports[1] },
  };
}

function parseV1Port(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

function parseV2(data: Buffer): ParseResult {
  const signatureLength = Math.min(data.length, V2_SIGNATURE.length);
  if (!data.subarray(0, signatureLength).equals(V2_SIGNATURE.subarray(0, signatureLength))) {
    return { status: 'invalid', problem: 'the data does not start with a PROXY protocol signature' };
  }
  if (data.length < V2_HEADER_LENGTH) return { status: 'incomplete' };

  const versionCommand = data[12]!;
  const familyProtocol = data[13]!;
  const bodyLength = data.readUInt16BE(14);
  if (versionCommand >> 4 !== 2) return { status: 'invalid', problem: `unsupported v2 version ${versionCommand >> 4}` };
  if (bodyLength > V2_MAX_BODY_LENGTH) return { status: 'invalid', problem: `v2 address block of ${bodyLength} bytes is too long` };
  const length = V2_HEADER_LENGTH + bodyLength;
  if (data.length < length) return { status: 'incomplete' };

  const command = versionCommand & 0x0f;
  if (command === 0x0) return { status: 'complete', length, addresses: undefined };
  if (command !== 0x1) return { status: 'invalid', problem: `unsupported v2 command ${command}` };

  const body = data.subarray(V2_HEADER_LENGTH, length);
  switch (familyProtocol) {
    case 0x11:
      if (body.length < 12) return { status: 'invalid', problem: 'v2 IPv4 address block is too short' };
      return {
        status: 'complete',
        length,
        addresses: {
          sourceAddress: readIPv4(body, 0),
          destinationAddress: readIPv4(body, 4),
          sourcePort: body.readUInt16BE(8),
          destinationPort: body.readUInt16BE(10),
        },
      };
    case 0x21:
      if (body.length < 36) return { status: 'invalid', problem: 'v2 IPv6 address block is too short' };
      return {
        status: 'complete',
        length,
        addresses: {
          sourceAddress: readIPv6(body, 0),
          destinationAddress: readIPv6(body, 16),
          sourcePort: body.readUInt16BE(32),
          destinationPort: body.readUInt16BE(34),
        },
      };
    default:
      // Other families (UNIX sockets, UDP) carry no TCP client address; the connection's own addresses apply.
      return { status: 'complete', length, addresses: undefined };
  }
}

function writeAddress(buffer: Buffer, offset: number, address: string, family: 4 | 6): void {
  if (family === 4) {
    address.split('.').forEach((part, index) => buffer.writeUInt8(Number(part), offset + index));
    return;
  }
  expandIPv6(address).forEach((group, index) => buffer.writeUInt16BE(group, offset + index * 2));
}

function readIPv4(buffer: Buffer, offset: number): string {
  return `${buffer[offset]}.${buffer[offset + 1]}.${buffer[offset + 2]}.${buffer[offset + 3]}`;
}

function readIPv6(buffer: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buffer.readUInt16BE(offset + i * 2).toString(16));
  return compressIPv6(groups);
}

/** Expands an IPv6 address (with `::` and an optional embedded IPv4 tail) into its 8 groups. */
function expandIPv6(address: string): number[] {
  let text = address;
  const ipv4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (ipv4Tail !== null) {
    const octets = ipv4Tail[1]!.split('.').map(Number);
    const high = ((octets[0]! << 8) | octets[1]!).toString(16);
    const low = ((octets[2]! << 8) | octets[3]!).toString(16);
    text = `${text.slice(0, ipv4Tail.index)}${high}:${low}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  return [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups].map((group) => parseInt(group, 16));
}

/** Formats 8 hexadecimal groups with the longest run of two or more zero groups as `::` (RFC 5952). */
function compressIPv6(groups: string[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}
