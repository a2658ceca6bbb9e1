// Builds the Lua config text of the integration tests.

/** A backend as a config lists it: an address, or an address with a weight. */
export type BackendEntry = string | { readonly address: string; readonly weight: number };

export interface ServiceOptions {
  readonly backends: readonly BackendEntry[];
  /** Defaults to `127.0.0.1:0`, so rsp picks a free port and reports it. */
  readonly listen?: string;
  readonly algorithm?: 'round_robin' | 'least_connections';
}

export interface TimeoutsSeconds {
  readonly connect: number;
  readonly idle: number;
  readonly drain: number;
}

const DEFAULT_TIMEOUTS: TimeoutsSeconds = { connect: 2, idle: 60, drain: 5 };

/** Quotes `text` as a Lua string literal. JSON escapes are valid Lua escapes for the ASCII text used here. */
export function luaString(text: string): string {
  return JSON.stringify(text);
}

function backendList(backends: readonly BackendEntry[]): string {
  const entries = backends.map((entry) =>
    typeof entry === 'string' ? luaString(entry) : `{ address = ${luaString(entry.address)}, weight = ${entry.weight} }`,
  );
  return `{ ${entries.join(', ')} }`;
}

function serviceFields(service: ServiceOptions): string[] {
  return [
    `listen = ${luaString(service.listen ?? '127.0.0.1:0')}`,
    `algorithm = ${luaString(service.algorithm ?? 'round_robin')}`,
    `backends = ${backendList(service.backends)}`,
  ];
}

function timeoutsField(timeouts: TimeoutsSeconds): string {
  return `timeouts = { connect = ${timeouts.connect}, idle = ${timeouts.idle}, drain = ${timeouts.drain} }`;
}

/** Returns the config of one top-level service (named `default` by rsp) with metrics off. */
export function singleServiceConfig(service: ServiceOptions, timeouts: TimeoutsSeconds = DEFAULT_TIMEOUTS): string {
  return ['metrics = false', ...serviceFields(service), timeoutsField(timeouts), ''].join('\n');
}

/** Returns the config of several named services, each with the same timeouts, with metrics off. */
export function multiServiceConfig(
  services: Readonly<Record<string, ServiceOptions>>,
  timeouts: TimeoutsSeconds = DEFAULT_TIMEOUTS,
): string {
  const entries = Object.entries(services).map(
    ([name, service]) => `  ${name} = { ${[...serviceFields(service), timeoutsField(timeouts)].join(', ')} },`,
  );
  return ['metrics = false', 'services = {', ...entries, '}', ''].join('\n');
}
