// Polling and deadline helpers shared by the integration tests.
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/**
 * Polls `condition` every 20 ms until it returns a value other than `undefined`,
 * `false` or `null`, and returns that value. Rejects after `timeoutMs` with
 * `description` and the last value of `detail()` in the message.
 */
export async function waitFor<T>(
  description: string,
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() >= deadline) {
      const extra = detail();
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${description}${extra === '' ? '' : `: ${extra}`}`);
    }
    await sleep(20);
  }
}

/** Rejects with a message naming `description` unless `promise` settles within `timeoutMs`. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, description: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${description}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
