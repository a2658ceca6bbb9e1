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

const PRETENURING_FLAG = 'allocation-site-pretenuring';

/**
 * Once nearly every object from one object literal survived a young-generation
 * collection, V8 allocates that literal's later objects in the old generation.
 * A dead object there keeps the young objects it points to alive until the next
 * full collection, so they survive too, and V8 pretenures their literals as
 * well. Under a new connection per request, a worker's per-connection objects
 * went this way: 1,300 bytes per connection moved to the old generation
 * (`--trace-gc-nvp`), and `--trace-pretenuring-statistics` showed literals
 * switched to the old generation with a survival ratio of 1.0. Without
 * pretenuring it was 144 bytes.
 */
const NO_PRETENURING_OPTION = `--no-${PRETENURING_FLAG}`;

/**
 * Returns the options for workers, after those of the primary's own command
 * line. A semi-space size or pretenuring setting that the operator set, on the
 * command line or in NODE_OPTIONS, is kept.
 */
export function workerExecArgv(primaryExecArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const operatorOptions = [...primaryExecArgv, nodeOptions ?? ''].map((option) => option.replaceAll('_', '-'));
  const operatorSet = (flag: string): boolean => operatorOptions.some((option) => option.includes(flag));
  return [
    ...primaryExecArgv,
    EXPOSE_GC_OPTION,
    ...(operatorSet(SEMI_SPACE_FLAG) ? [] : [MAX_SEMI_SPACE_OPTION]),
    ...(operatorSet(PRETENURING_FLAG) ? [] : [NO_PRETENURING_OPTION]),
  ];
}
