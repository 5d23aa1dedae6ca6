// Tests wait for a state, never for a fixed time.

export interface WaitForOptions {
  /** Give up after this many milliseconds (default 30,000). */
  timeoutMs?: number;
  /** Poll interval in milliseconds (default 50). */
  intervalMs?: number;
  /** Says what was awaited, for the timeout error. */
  description?: string;
}

/**
 * Polls `probe` until it returns something other than `undefined`, `null` or `false`, and returns that.
 * A probe that throws is retried; its last error is reported on timeout.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  { timeoutMs = 30_000, intervalMs = 50, description = 'condition' }: WaitForOptions = {},
): Promise<Exclude<T, undefined | null | false>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false)
        return value as Exclude<T, undefined | null | false>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
