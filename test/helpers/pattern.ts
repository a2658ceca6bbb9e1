// Deterministic pseudo-random bytes for transfer tests. Both ends of a test derive
// the same bytes from a seed, so a transfer is checked by comparing SHA-256 digests
// without keeping the data in memory.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

const CHUNK_BYTES = 64 * 1024;

/**
 * Fills `words` from the xorshift32 generator and returns the next state.
 * The byte order is the platform's, which is fine because both ends of a test run
 * on the same machine.
 */
function fillWords(words: Uint32Array, state: number): number {
  let x = state;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return x;
}

function initialState(seed: number): number {
  // xorshift32 stays at zero forever from a zero state.
  return (seed >>> 0) === 0 ? 0x9e3779b9 : seed >>> 0;
}

/**
 * Yields the first `totalBytes` bytes of the pattern for `seed` in chunks of 64 KiB.
 * Every chunk but the last has a length divisible by 4, so the output does not depend
 * on how a consumer groups the chunks.
 */
export function* patternChunks(totalBytes: number, seed = 1): Generator<Buffer> {
  let state = initialState(seed);
  let remaining = totalBytes;
  while (remaining > 0) {
    const length = Math.min(CHUNK_BYTES, remaining);
    const words = new Uint32Array(Math.ceil(length / 4));
    state = fillWords(words, state);
    yield Buffer.from(words.buffer, 0, length);
    remaining -= length;
  }
}

/** Creates a stream of the pattern that generates each chunk only when the consumer reads it. */
export function patternStream(totalBytes: number, seed = 1): Readable {
  return Readable.from(patternChunks(totalBytes, seed), { objectMode: false, highWaterMark: CHUNK_BYTES });
}

/** Returns the pattern as one buffer, for payloads of a few MiB at most. */
export function patternBuffer(totalBytes: number, seed = 1): Buffer {
  return Buffer.concat([...patternChunks(totalBytes, seed)]);
}

/** Returns the hex SHA-256 digest of the pattern without keeping it in memory. */
export function patternSha256(totalBytes: number, seed = 1): string {
  const hash = createHash('sha256');
  for (const chunk of patternChunks(totalBytes, seed)) hash.update(chunk);
  return hash.digest('hex');
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export const MiB = 1024 * 1024;
