// Command-line parsing with yargs. Exit status: 0 on success, 1 on an invalid
// config or a start failure, 2 on bad usage.
import { createRequire } from 'node:module';
import yargs from 'yargs';
import { LOG_LEVELS, type LogLevel } from './log.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface CliOptions {
  readonly configFile: string;
  /** `--workers`, which overrides the config file's `workers`. */
  readonly workers: number | undefined;
  readonly check: boolean;
  readonly logLevel: LogLevel;
}

const packageJson = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Parses the arguments; prints help, the version or a usage error and exits when the arguments call for it. */
export async function parseCommandLine(argv: readonly string[]): Promise<CliOptions> {
  const parser = yargs([...argv])
    .scriptName('rsp')
    .usage('Usage: $0 [options] <config.lua>\n\nTCP load balancer configured by a Lua file.')
    .option('workers', {
      alias: 'w',
      // A string, so that an invalid value can be shown as typed instead of as NaN.
      type: 'string',
      describe: 'Worker processes (overrides the config; default: available CPUs)',
    })
    .option('check', {
      alias: 't',
      type: 'boolean',
      default: false,
      describe: 'Validate the config, print a summary and exit 0 (valid) or 1 (invalid)',
    })
    .option('log-level', {
      type: 'string',
      choices: LOG_LEVELS,
      default: 'info',
      describe: 'Lowest level that is logged',
    })
    .version(packageJson.version)
    .alias('version', 'v')
    .help()
    .alias('help', 'h')
    .strictOptions()
    .check((args) => {
      // With exitProcess(false), yargs still runs this check after printing help or the version.
      if (args.help === true || args.version === true) return true;
      if (args._.length !== 1) {
        throw new Error(args._.length === 0 ? 'Missing the config file argument.' : `Expected one config file, got ${args._.length} arguments.`);
      }
      const workers = args.workers;
      if (workers !== undefined && parseWorkers(workers) === undefined) {
        throw new Error(`--workers must be a positive integer, got "${workers}"`);
      }
      return true;
    })
    .exitProcess(false)
    .fail((message, error) => {
      console.error(message ?? error?.message ?? 'Invalid arguments.');
      console.error('Run "rsp --help" for usage.');
      process.exit(EXIT_USAGE);
    });

  const args = await parser.parseAsync();
  if (args.help === true || args.version === true) process.exit(EXIT_OK);

  return {
    configFile: String(args._[0]),
    workers: args.workers === undefined ? undefined : parseWorkers(args.workers),
    check: args.check,
    logLevel: args['log-level'] as LogLevel,
  };
}

function parseWorkers(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(text.trim())) return undefined;
  return Number(text.trim());
}
