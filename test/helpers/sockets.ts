// Finds which process has a TCP socket open, from /proc (Linux only), so a test
// can tell which rsp worker carries a connection.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** One row of /proc/net/tcp or tcp6, reduced to the columns these helpers use. */
interface TcpRow {
  readonly localPort: number;
  readonly remotePort: number;
  /** Connection state in hex as the kernel prints it: 01 established, 0A listen. */
  readonly state: string;
  readonly inode: string;
}

function portOfHexAddress(address: string): number {
  return parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
}

/** Reads the TCP sockets of this network namespace, IPv4 and IPv6. */
function tcpRows(): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    // Columns: sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [, local, remote, state] = fields;
      const inode = fields[9];
      if (local === undefined || remote === undefined || state === undefined || inode === undefined || inode === '0') continue;
      rows.push({ localPort: portOfHexAddress(local), remotePort: portOfHexAddress(remote), state, inode });
    }
  }
  return rows;
}

/** Inodes of the sockets that process `pid` has open, or none when it has exited. */
function socketInodesOf(pid: number): Set<string> {
  const inodes = new Set<string>();
  let descriptors: string[];
  try {
    descriptors = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const descriptor of descriptors) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${descriptor}`);
    } catch {
      // The descriptor was closed after the listing.
      continue;
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match !== null) inodes.add(match[1] as string);
  }
  return inodes;
}

/**
 * Returns the member of `pids` that has open the TCP connection from local port
 * `localPort` to remote port `remotePort`, or undefined when none does.
 */
export function pidHoldingConnection(localPort: number, remotePort: number, pids: readonly number[]): number | undefined {
  const inodes = tcpRows()
    .filter((row) => row.localPort === localPort && row.remotePort === remotePort)
    .map((row) => row.inode);
  return pids.find((pid) => {
    const held = socketInodesOf(pid);
    return inodes.some((inode) => held.has(inode));
  });
}

/** Local ports of the listening TCP sockets that process `pid` has open. */
export function listeningPorts(pid: number): number[] {
  const held = socketInodesOf(pid);
  const ports = new Set(tcpRows().filter((row) => row.state === '0A' && held.has(row.inode)).map((row) => row.localPort));
  return [...ports].sort((a, b) => a - b);
}
