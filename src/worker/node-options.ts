// Node.js options that the primary passes to the worker processes it forks.
import { EXPOSE_GC_OPTION } from '../pump/read-garbage.js';

const SEMI_SPACE_FLAG = '--max-semi-space-size';

/**
 * V8 grows the young generation of a process that allocates fast up to two
 * semi-spaces of 16 MiB each (32 MiB measured on Node.js 20, 64-bit), and the
 * pages stay resident. A worker that accepts thousands of connections at once
 * allocates that fast. With semi-spaces of at most 2 MiB, the memory per idle
 * connection fell from about 9 KiB to under 5 KiB in `npm run bench` (scenario
 * E), and request rates and transfer speeds stayed within their noise.
 */
const MAX_SEMI_SPACE_OPTION = `${SEMI_SPACE_FLAG}=2`;

/**
 * Returns the options for workers, after those of the primary's own command
 * line. A semi-space size that the operator set, on the command line or in
 * NODE_OPTIONS, is kept.
 */
export function workerExecArgv(primaryExecArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const operatorSetSemiSpace = [...primaryExecArgv, nodeOptions ?? ''].some((option) => option.includes(SEMI_SPACE_FLAG));
  return [...primaryExecArgv, EXPOSE_GC_OPTION, ...(operatorSetSemiSpace ? [] : [MAX_SEMI_SPACE_OPTION])];
}
