/**
 * Polls `probe` until it returns a value other than undefined, or fails with the last reason once
 * the deadline passes. Tests and the harness wait on state this way, never on fixed sleeps.
 */
export interface WaitOptions {
  /** What is awaited, for the error message. */
  readonly description: string;
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  { description, timeoutMs = 30_000, intervalMs = 100 }: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
