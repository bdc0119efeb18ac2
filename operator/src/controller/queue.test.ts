import { describe, expect, it } from 'vitest';

import { WorkQueue } from './queue.ts';

/** A queue whose handler fails with the given errors in turn, recording each retry delay. */
function failingQueue(errors: Error[], retryAfterOf?: (error: unknown) => number | undefined) {
  const delays: number[] = [];
  const handled: string[] = [];
  const queue = new WorkQueue({
    concurrency: 1,
    backoff: { baseMs: 100, maxMs: 1_000 },
    handler: (key) => {
      handled.push(key);
      const error = errors.shift();
      return error === undefined ? Promise.resolve({}) : Promise.reject(error);
    },
    ...(retryAfterOf ? { retryAfterOf } : {}),
    onFailure: (_key, _error, retryInMs) => {
      delays.push(retryInMs);
    },
  });
  return { queue, delays, handled };
}

describe('WorkQueue', () => {
  it('runs a key queued twice once, and only after start()', async () => {
    const { queue, handled } = failingQueue([]);
    queue.add('a');
    queue.add('a');
    queue.add('b');
    expect(handled).toEqual([]);
    queue.start();
    await queue.idle();
    expect(handled).toEqual(['a', 'b']);
    await queue.shutdown();
  });

  it('backs off exponentially per key, up to the maximum', async () => {
    const { queue, delays } = failingQueue([new Error('1'), new Error('2'), new Error('3')]);
    queue.start();
    queue.add('a');
    await queue.idle();
    expect(delays).toEqual([100]);
    queue.forget('a');
    await queue.shutdown();
  });

  it("waits at least the server's Retry-After before retrying", async () => {
    const throttled = Object.assign(new Error('429'), { retryAfterMs: 5_000 });
    const { queue, delays } = failingQueue(
      [throttled, new Error('plain')],
      (error) => (error as { retryAfterMs?: number }).retryAfterMs,
    );
    queue.start();
    queue.add('a');
    await queue.idle();
    expect(delays).toEqual([5_000]);
    queue.forget('a');
    await queue.shutdown();
  });
});
