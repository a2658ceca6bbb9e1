#!/usr/bin/env node
// Entry point. The primary parses the command line and loads the config; a
// worker (forked by the primary through node:cluster) waits for the config over IPC.
//
// Each role imports only its own modules. A worker that also loaded the
// primary's (the Lua VM, yargs and the rest) ran full V8 collections during bulk
// transfers. It moved a 100 MiB download at 400 to 670 MB/s instead of 715 to
// 1,140 MB/s (curl through one worker to nginx, on a 2-core machine).
import cluster from 'node:cluster';
import type { Config } from './config/types.js';

async function main(): Promise<void> {
  if (!cluster.isPrimary) {
    const { runWorker } = await import('./worker/worker.js');
    runWorker();
    return;
  }

  const [{ EXIT_FAILURE, EXIT_OK, parseCommandLine }, { formatConfigSummary }, { loadConfig }, { RspError }, { runPrimary }] =
    await Promise.all([
      import('./cli.js'),
      import('./config-summary.js'),
      import('./config/load.js'),
      import('./errors.js'),
      import('./primary/primary.js'),
    ]);
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
