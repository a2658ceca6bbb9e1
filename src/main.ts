#!/usr/bin/env node
// Entry point. The primary parses the command line and loads the config; a
// worker (forked by the primary through node:cluster) waits for the config over IPC.
import cluster from 'node:cluster';
import { EXIT_FAILURE, EXIT_OK, parseCommandLine } from './cli.js';
import { formatConfigSummary } from './config-summary.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { RspError } from './errors.js';
import { runPrimary } from './primary/primary.js';
import { runWorker } from './worker/worker.js';

async function main(): Promise<void> {
  if (!cluster.isPrimary) {
    runWorker();
    return;
  }

  const options = await parseCommandLine(process.argv.slice(2));
  let config: Config;
  try {
    config = loadConfig(options.configFile);
  } catch (error) {
    if (!(error instanceof RspError)) throw error;
    console.error(error.message);
    process.exit(EXIT_FAILURE);
  }

  if (options.check) {
    console.log(formatConfigSummary(config, options));
    process.exit(EXIT_OK);
  }
  await runPrimary(options, config);
}

await main();
