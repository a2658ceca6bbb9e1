// The targets the load goes to: the backends directly, rsp in several process
// models, HAProxy, nginx stream and a plain Node pipe proxy. Every proxy listens on
// its own 127.0.0.1 port and balances round-robin over the same two backends.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clearTimeout, setTimeout } from 'node:timers';
import { HOST, freePort } from './backends.mjs';
import { runCommand, startProcess, stopProcess, waitForPort } from './processes.mjs';
import { NGINX_STREAM_MODULE, ensureNginxStream, which } from './tools.mjs';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Targets whose best figure is the yardstick of every ratio. */
export const REFERENCE_TARGETS = ['haproxy', 'nginx'];

function backendAddresses(context) {
  return context.backends.map((backend) => `${HOST}:${backend.port}`);
}

function targetDir(context, name) {
  const dir = join(context.tmpDir, `target-${name}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

// ---- rsp ---------------------------------------------------------------------

/** Returns rsp's config. `accept` ("primary" or "workers") is left out when undefined. */
function rspConfig(context, workers, accept) {
  const backends = backendAddresses(context)
    .map((address) => `  "${address}",`)
    .join('\n');
  return `-- rsp under benchmark, written by bench/lib/targets.mjs.
workers = ${workers}
${accept === undefined ? '' : `accept = "${accept}"\n`}listen = "${HOST}:0"
algorithm = "round_robin"
backends = {
${backends}
}
timeouts = { connect = 5, idle = 600, drain = 1 }
metrics = false
access_log = false
`;
}

function parseListenPort(line) {
  let record;
  try {
    record = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (record.msg !== 'rsp started') return undefined;
  const listen = record.services?.[0]?.listen;
  if (typeof listen !== 'string') throw new Error(`"rsp started" line has no services[0].listen: ${line}`);
  return Number(listen.slice(listen.lastIndexOf(':') + 1));
}

/**
 * Returns true when the rsp build takes the `accept` setting, which sets
 * cluster.schedulingPolicy and so overrides NODE_CLUSTER_SCHED_POLICY. Builds from
 * before the setting reject it as an unknown key, and there the variable decides.
 */
async function rspTakesAcceptSetting(context) {
  if (context.rspTakesAccept === undefined) {
    const file = join(targetDir(context, 'rsp-check'), 'accept.lua');
    writeFileSync(file, rspConfig(context, 1, 'workers'));
    const result = await runCommand(context.node, [context.rspMain, '--check', file], { timeoutMs: 30_000 });
    context.rspTakesAccept = result.code === 0;
  }
  return context.rspTakesAccept;
}

/**
 * Starts rsp with `workers` workers and waits for its "rsp started" log line, which
 * carries the port picked for listen port 0.
 */
async function startRsp(context, name, workers, schedulingPolicy) {
  const dir = targetDir(context, name);
  const configFile = join(dir, 'rsp.lua');
  const accept = (await rspTakesAcceptSetting(context)) ? { rr: 'primary', none: 'workers' }[schedulingPolicy] : undefined;
  writeFileSync(configFile, rspConfig(context, workers, accept));

  const logFile = join(dir, 'output.log');
  let settle;
  const started = new Promise((resolve) => {
    settle = resolve;
  });
  const onLine = (line) => {
    try {
      const port = parseListenPort(line);
      if (port !== undefined) settle({ port });
    } catch (error) {
      settle({ error });
    }
  };
  // NODE_CLUSTER_SCHED_POLICY is read by node:cluster in the primary: "rr" makes the
  // primary accept and hand each connection to a worker, "none" lets every worker
  // accept from the shared listen socket itself. It is set either way, so an
  // inherited value cannot change what a target name means. The config's `accept`
  // setting, where the build takes it, selects the same policy.
  const env = { ...process.env, NODE_CLUSTER_SCHED_POLICY: schedulingPolicy };
  const handle = startProcess(name, context.node, [context.rspMain, '--workers', String(workers), configFile], { env, logFile, onLine });
  handle.exited.then((status) => {
    settle({ error: new Error(`rsp exited (${JSON.stringify(status)}) before logging "rsp started"; see ${logFile}`) });
  });
  const timer = setTimeout(() => settle({ error: new Error(`rsp did not log "rsp started" within 30 s; see ${logFile}`) }), 30_000);

  const outcome = await started;
  clearTimeout(timer);
  if (outcome.error !== undefined) {
    await stopProcess(handle, { graceMs: 2000 });
    throw outcome.error;
  }
  return { port: outcome.port, handle };
}

function rspTarget(name, workers, schedulingPolicy, description) {
  return {
    name,
    description,
    async check(context) {
      return existsSync(context.rspMain) ? undefined : `${context.rspMain} not found: run "npm run build" first`;
    },
    start: (context) => startRsp(context, name, workers, schedulingPolicy),
  };
}

// ---- HAProxy -----------------------------------------------------------------

function haproxyConfig(context, port) {
  const servers = backendAddresses(context)
    .map((address, index) => `  server backend-${index + 1} ${address}`)
    .join('\n');
  // Each proxied connection uses two file descriptors, so maxconn stays below half
  // of the open-file limit that HAProxy may raise itself to.
  const maxconn = Math.min(20_000, Math.floor((context.maxOpenFiles - 200) / 2));
  return `# HAProxy under benchmark, written by bench/lib/targets.mjs.
global
  nbthread 2
  maxconn ${maxconn}

defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s

frontend bench
  bind ${HOST}:${port}
  default_backend backends

backend backends
  balance roundrobin
${servers}
`;
}

const haproxyTarget = {
  name: 'haproxy',
  description: 'HAProxy, mode tcp, nbthread 2',
  async check() {
    return which('haproxy') === undefined ? 'haproxy not found (Debian package haproxy)' : undefined;
  },
  async start(context) {
    const dir = targetDir(context, 'haproxy');
    const port = await freePort();
    const configFile = join(dir, 'haproxy.cfg');
    writeFileSync(configFile, haproxyConfig(context, port));
    const handle = startProcess('haproxy', which('haproxy'), ['-f', configFile, '-db'], { logFile: join(dir, 'output.log') });
    await waitForPort(HOST, port, { handle });
    return { port, handle };
  },
};

// ---- nginx stream ------------------------------------------------------------

function nginxStreamConfig(context, dir, port, loadModule) {
  const servers = backendAddresses(context)
    .map((address) => `    server ${address};`)
    .join('\n');
  return `# nginx stream proxy under benchmark, written by bench/lib/targets.mjs.
${loadModule ? `load_module ${NGINX_STREAM_MODULE};` : ''}
worker_processes 2;
worker_rlimit_nofile ${context.maxOpenFiles};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 16384; }
stream {
  upstream backends {
${servers}
  }
  server {
    listen ${HOST}:${port};
    proxy_pass backends;
    proxy_timeout 600s;
  }
}
`;
}

const nginxTarget = {
  name: 'nginx',
  description: 'nginx stream module, 2 worker processes',
  async check(context) {
    if (which('nginx') === undefined) return 'nginx not found (Debian package nginx-light)';
    const hasStream = await ensureNginxStream({ install: context.install, warn: context.warn });
    return hasStream ? undefined : `nginx has no stream module: ${NGINX_STREAM_MODULE} is missing (Debian package libnginx-mod-stream)`;
  },
  async start(context) {
    const dir = targetDir(context, 'nginx');
    const port = await freePort();
    const configFile = join(dir, 'nginx.conf');
    writeFileSync(configFile, nginxStreamConfig(context, dir, port, existsSync(NGINX_STREAM_MODULE)));
    const args = ['-e', join(dir, 'error.log'), '-p', dir, '-c', configFile, '-g', 'daemon off;'];
    const handle = startProcess('nginx', which('nginx'), args, { logFile: join(dir, 'output.log') });
    await waitForPort(HOST, port, { handle });
    return { port, handle };
  },
};

// ---- pipe proxy and direct ---------------------------------------------------

function pipeTarget(name, workers, description, script = 'pipe-proxy.mjs') {
  return {
    name,
    description,
    async check() {
      return undefined;
    },
    async start(context) {
      const dir = targetDir(context, name);
      const port = await freePort();
      const args = [join(benchDir, script), '--port', String(port), '--backends', backendAddresses(context).join(','), '--workers', String(workers)];
      const handle = startProcess(name, context.node, args, { logFile: join(dir, 'output.log') });
      await waitForPort(HOST, port, { handle });
      return { port, handle };
    },
  };
}

/** No proxy: the load goes straight to the backends, which bounds what any proxy can reach. */
const directTarget = {
  name: 'direct',
  description: 'no proxy: backend-1, or both backends in turn where a scenario opens several connections',
  direct: true,
  async check() {
    return undefined;
  },
  async start(context) {
    return { port: context.backends[0].port, handle: undefined };
  },
};

/** Every target, in the order a scenario runs them. */
export const ALL_TARGETS = [
  directTarget,
  haproxyTarget,
  nginxTarget,
  rspTarget('rsp-1w', 1, 'none', 'rsp, 1 worker accepting from the listen socket (accept = "workers", the default)'),
  rspTarget('rsp-2w', 2, 'none', 'rsp, 2 workers accepting from the shared socket (accept = "workers", the default)'),
  rspTarget('rsp-2w-primary', 2, 'rr', 'rsp, 2 workers, the primary hands out connections (accept = "primary")'),
  rspTarget('rsp-1w-primary', 1, 'rr', 'rsp, 1 worker, handed connections by the primary (accept = "primary")'),
  pipeTarget('pipe', 1, 'bench/pipe-proxy.mjs: node:net and pipe(), 1 process'),
  pipeTarget('pipe-2w', 2, 'bench/pipe-proxy.mjs --workers 2: the same in 2 node:cluster workers that accept for themselves'),
  pipeTarget('handles-2w', 2, 'bench/handle-proxy.mjs --workers 2: a bare proxy on the TCP handles that rsp uses, in 2 node:cluster workers', 'handle-proxy.mjs'),
];

/** Targets run when --targets is not given. */
export const DEFAULT_TARGETS = ['direct', 'haproxy', 'nginx', 'rsp-1w', 'rsp-2w', 'rsp-2w-primary', 'pipe', 'pipe-2w'];
