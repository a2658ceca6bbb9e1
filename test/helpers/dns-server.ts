// A minimal authoritative DNS server over UDP on 127.0.0.1, port 0, for the DNS
// discovery tests. It answers A and AAAA questions from records that the test changes
// at run time. Messages follow the format of RFC 1035, section 4.1.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

/** Record types that the server returns: A (RFC 1035) and AAAA (RFC 3596). */
export const TYPE_A = 1;
export const TYPE_AAAA = 28;
const CLASS_IN = 1;

/** Response codes (RCODE) of RFC 1035. */
const RCODE_NOERROR = 0;
const RCODE_FORMERR = 1;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

/** Header flag bits of RFC 1035, section 4.1.1. */
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_RD = 0x0100;
const OPCODE_MASK = 0x7800;

const HEADER_BYTES = 12;
/** A pointer (top two bits set) to offset 12, where the question name starts in every response. */
const POINTER_TO_QUESTION_NAME = 0xc00c;
/** Keeps a response within the 512 bytes of a plain UDP message, so no resolver needs to retry over TCP. */
const MAX_RECORDS_PER_TYPE = 10;

/** Addresses of one name. A type without addresses gets an empty NOERROR answer. */
export interface DnsRecords {
  readonly a?: readonly string[];
  readonly aaaa?: readonly string[];
}

/** One question the server received, with the name in lower case and without a trailing dot. */
export interface DnsQuery {
  readonly name: string;
  readonly type: number;
}

export interface DnsServer {
  /** `127.0.0.1:<port>`, as a `resolvers` entry of the config lists it. */
  readonly address: string;
  readonly port: number;
  /** Every question received so far, dropped ones included, in arrival order. */
  readonly queries: readonly DnsQuery[];
  /** Replaces the records of `name`. The name is matched without regard to case. */
  setRecords(name: string, records: DnsRecords): void;
  /** Forgets `name`, so questions about it get NXDOMAIN. */
  deleteRecords(name: string): void;
  /**
   * While `drop` is true, questions are counted but get no response, which a resolver
   * reports as a timeout. With `type`, only questions of that type are dropped.
   */
  setDropping(drop: boolean, type?: number): void;
  /** Number of questions received about `name`, of any type. */
  queryCount(name: string): number;
  /** Closes the socket. Safe to call more than once. */
  close(): Promise<void>;
}

interface StoredRecords {
  readonly a: readonly Buffer[];
  readonly aaaa: readonly Buffer[];
}

interface ParsedQuestion {
  readonly name: string;
  readonly type: number;
  readonly qclass: number;
  /** The question section as received (name, type and class), which the response repeats unchanged. */
  readonly bytes: Buffer;
}

/**
 * Records are sent with a TTL of 0, so that even a caching resolver sends every lookup
 * to the server. Node 20.20 (c-ares 1.34) sent every lookup with a TTL of 60 s as well.
 */
const TTL_SECONDS = 0;

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Returns the 16 bytes of an IPv6 address, including forms with `::` and a dotted IPv4 tail. */
function ipv6Bytes(address: string): Buffer {
  // A dotted IPv4 tail (`::ffff:192.0.2.1`) becomes its two 16-bit groups.
  let text = address;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (isIPv4(tail)) {
    const octets = tail.split('.').map(Number) as [number, number, number, number];
    const high = ((octets[0] << 8) | octets[1]).toString(16);
    const low = ((octets[2] << 8) | octets[3]).toString(16);
    text = `${text.slice(0, lastColon + 1)}${high}:${low}`;
  }

  // `::` stands for as many zero groups as the address needs to reach eight.
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeroCount = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(zeroCount).fill('0'), ...restGroups];

  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => bytes.writeUInt16BE(parseInt(group, 16), index * 2));
  return bytes;
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

function storeRecords(name: string, records: DnsRecords): StoredRecords {
  const a = records.a ?? [];
  const aaaa = records.aaaa ?? [];
  for (const address of a) {
    if (!isIPv4(address)) throw new Error(`A record of ${name} must be an IPv4 address, got ${JSON.stringify(address)}`);
  }
  for (const address of aaaa) {
    if (!isIPv6(address)) throw new Error(`AAAA record of ${name} must be an IPv6 address, got ${JSON.stringify(address)}`);
  }
  if (a.length > MAX_RECORDS_PER_TYPE || aaaa.length > MAX_RECORDS_PER_TYPE) {
    throw new Error(`${name} may have at most ${MAX_RECORDS_PER_TYPE} records of each type, got ${a.length} A and ${aaaa.length} AAAA`);
  }
  return { a: a.map(ipv4Bytes), aaaa: aaaa.map(ipv6Bytes) };
}

/**
 * Reads the single question that follows the header. Returns undefined when the
 * message is truncated or its name uses compression, which a query has no reason to do.
 */
function parseQuestion(message: Buffer): ParsedQuestion | undefined {
  const labels: string[] = [];
  let offset = HEADER_BYTES;
  for (;;) {
    if (offset >= message.length) return undefined;
    const length = message[offset] as number;
    offset += 1;
    if (length === 0) break;
    // Lengths of 64 and above are pointers or reserved label types.
    if (length > 63 || offset + length > message.length) return undefined;
    labels.push(message.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  return {
    name: normalizeName(labels.join('.')),
    type: message.readUInt16BE(offset),
    qclass: message.readUInt16BE(offset + 2),
    bytes: message.subarray(HEADER_BYTES, offset + 4),
  };
}

/** Builds a response header that echoes the query's id, opcode and RD bit. */
function responseHeader(query: Buffer, rcode: number, questionCount: number, answerCount: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  const queryFlags = query.readUInt16BE(2);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  header.writeUInt16BE(FLAG_QR | (queryFlags & OPCODE_MASK) | FLAG_AA | (queryFlags & FLAG_RD) | rcode, 2);
  header.writeUInt16BE(questionCount, 4);
  header.writeUInt16BE(answerCount, 6);
  // NSCOUNT and ARCOUNT stay 0, so the response has no authority records and no OPT record, even when the query had one.
  return header;
}

/** Builds one answer record whose name points back at the question name. */
function answerRecord(type: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(12);
  fixed.writeUInt16BE(POINTER_TO_QUESTION_NAME, 0);
  fixed.writeUInt16BE(type, 2);
  fixed.writeUInt16BE(CLASS_IN, 4);
  fixed.writeUInt32BE(TTL_SECONDS, 6);
  fixed.writeUInt16BE(data.length, 10);
  return Buffer.concat([fixed, data]);
}

/**
 * Starts the server on 127.0.0.1, port 0. It has no records until `setRecords`.
 * The caller owns it and must call `close()`.
 */
export async function startDnsServer(): Promise<DnsServer> {
  const records = new Map<string, StoredRecords>();
  const queries: DnsQuery[] = [];
  /** Which questions get no response: none, all, or those of one type. */
  let dropping: boolean | number = false;
  const socket: Socket = createSocket('udp4');

  const respond = (query: Buffer): Buffer | undefined => {
    // Responses (QR set) are never answered, so two servers cannot loop.
    if (query.length < HEADER_BYTES || (query.readUInt16BE(2) & FLAG_QR) !== 0) return undefined;
    if ((query.readUInt16BE(2) & OPCODE_MASK) !== 0) return responseHeader(query, RCODE_NOTIMP, 0, 0);
    const question = query.readUInt16BE(4) === 1 ? parseQuestion(query) : undefined;
    if (question === undefined) return responseHeader(query, RCODE_FORMERR, 0, 0);

    queries.push({ name: question.name, type: question.type });
    if (dropping === true || dropping === question.type) return undefined;

    const known = records.get(question.name);
    if (known === undefined) return Buffer.concat([responseHeader(query, RCODE_NXDOMAIN, 1, 0), question.bytes]);
    let data: readonly Buffer[] = [];
    if (question.qclass === CLASS_IN && question.type === TYPE_A) data = known.a;
    if (question.qclass === CLASS_IN && question.type === TYPE_AAAA) data = known.aaaa;
    const answers = data.map((bytes) => answerRecord(question.type, bytes));
    return Buffer.concat([responseHeader(query, RCODE_NOERROR, 1, answers.length), question.bytes, ...answers]);
  };

  socket.on('message', (query, remote) => {
    const response = respond(query);
    if (response !== undefined) socket.send(response, remote.port, remote.address);
  });
  // An error of one send, such as a resolver socket that has closed, must not crash the test run.
  socket.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });

  const port = socket.address().port;
  let closing: Promise<void> | undefined;
  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    setRecords(name, newRecords) {
      records.set(normalizeName(name), storeRecords(name, newRecords));
    },
    deleteRecords(name) {
      records.delete(normalizeName(name));
    },
    setDropping(drop, type) {
      dropping = drop && type !== undefined ? type : drop;
    },
    queryCount(name) {
      const normalized = normalizeName(name);
      return queries.filter((query) => query.name === normalized).length;
    },
    close() {
      closing ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closing;
    },
  };
}
