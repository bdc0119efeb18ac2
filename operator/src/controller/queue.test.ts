import { afterEach, describe, expect, it, vi } from 'vitest';

import { WorkQueue, namespaceOf } from './queue.ts';

/** A queue whose handler records each key it is given and succeeds at once. */
function recordingQueue(concurrency = 1) {
  const handled: string[] = [];
  const queue = new WorkQueue({
    concurrency,
    handler: (key) => {
      handled.push(key);
      return Promise.resolve({});
    },
  });
  return { queue, handled };
}

/** A promise and the function that resolves it. */
function deferred() {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/**
 * A queue whose handler fails with the given errors in turn, recording each retry delay it announces
 * and when (Date.now(), the fake clock in the backoff tests) each attempt really ran.
 */
function failingQueue(errors: Error[], retryAfterOf?: (error: unknown) => number | undefined) {
  const delays: number[] = [];
  const handled: string[] = [];
  const attemptsAt: number[] = [];
  const queue = new WorkQueue({
    concurrency: 1,
    backoff: { baseMs: 100, maxMs: 1_000 },
    handler: (key) => {
      handled.push(key);
      attemptsAt.push(Date.now());
      const error = errors.shift();
      return error === undefined ? Promise.resolve({}) : Promise.reject(error);
    },
    ...(retryAfterOf ? { retryAfterOf } : {}),
    onFailure: (_key, _error, retryInMs) => {
      delays.push(retryInMs);
    },
  });
  return { queue, delays, handled, attemptsAt };
}

/** The gaps between consecutive attempts: how long each retry really waited. */
const gaps = (times: number[]) => times.slice(1).map((at, i) => at - (times[i] as number));

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

  describe('retries (fake timers: the retry timers are driven, not waited for)', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('backs off exponentially per key, up to the maximum', async () => {
      vi.useFakeTimers();
      const errors = Array.from({ length: 6 }, (_, i) => new Error(String(i + 1)));
      const { queue, delays, handled, attemptsAt } = failingQueue(errors);
      queue.start();
      queue.add('a');
      await queue.idle();
      expect(handled).toEqual(['a']);
      // A retry is a timer: it does not run a moment early.
      await vi.advanceTimersByTimeAsync(99);
      expect(handled).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(handled).toHaveLength(2);
      // Every remaining retry, until the seventh attempt succeeds and no timer is left.
      await vi.runAllTimersAsync();
      expect(handled).toHaveLength(7);
      expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000]);
      expect(gaps(attemptsAt)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
      expect(vi.getTimerCount()).toBe(0);
      await queue.shutdown();
    });

    it("waits at least the server's Retry-After before retrying", async () => {
      vi.useFakeTimers();
      const throttled = Object.assign(new Error('429'), { retryAfterMs: 5_000 });
      const { queue, delays, handled, attemptsAt } = failingQueue(
        [throttled, new Error('plain')],
        (error) => (error as { retryAfterMs?: number }).retryAfterMs,
      );
      queue.start();
      queue.add('a');
      await queue.idle();
      // The backoff alone would retry after 100 ms; the server asked for 5 s.
      await vi.advanceTimersByTimeAsync(4_999);
      expect(handled).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(handled).toHaveLength(2);
      // The plain error that follows backs off by its count (the second failure: 200 ms), not 5 s again.
      await vi.runAllTimersAsync();
      expect(handled).toHaveLength(3);
      expect(delays).toEqual([5_000, 200]);
      expect(gaps(attemptsAt)).toEqual([5_000, 200]);
      await queue.shutdown();
    });
  });

  it('dequeues a new key of another namespace within the first few while 1,000 of one namespace wait', async () => {
    const { queue, handled } = recordingQueue();
    queue.start();
    for (let i = 0; i < 1_000; i += 1) queue.add(`busy/key-${i}`);
    queue.add('quiet/key');
    expect(queue.length).toBe(1_000);
    await queue.idle();
    expect(handled).toHaveLength(1_001);
    // busy/key-0 was already being processed when the others arrived; quiet/key is the next but one.
    expect(handled.indexOf('quiet/key')).toBeLessThanOrEqual(2);
    expect(handled.filter((key) => key.startsWith('busy/'))).toEqual(
      Array.from({ length: 1_000 }, (_, i) => `busy/key-${i}`),
    );
    await queue.shutdown();
  });

  it("takes namespaces in turn, each namespace's keys in the order they were queued", async () => {
    const { queue, handled } = recordingQueue();
    for (const key of ['a/1', 'a/2', 'a/3', 'b/1', 'b/2', 'c/1', 'a/2', 'b/1']) queue.add(key);
    expect(queue.length).toBe(6);
    queue.start();
    await queue.idle();
    expect(handled).toEqual(['a/1', 'b/1', 'c/1', 'a/2', 'b/2', 'a/3']);
    expect(queue.length).toBe(0);
    await queue.shutdown();
  });

  it("counts a namespace's readers task (#readers/<namespace>) as that namespace's key", async () => {
    expect(namespaceOf('trading/bot')).toBe('trading');
    expect(namespaceOf('#readers/trading')).toBe('trading');
    expect(namespaceOf('plain')).toBe('');
    const { queue, handled } = recordingQueue();
    for (const key of ['a/1', 'a/2', '#readers/a', 'b/1']) queue.add(key);
    queue.start();
    await queue.idle();
    expect(handled).toEqual(['a/1', 'b/1', 'a/2', '#readers/a']);
    await queue.shutdown();
  });

  it('never gives a key to two workers at once: an add during processing runs it once more afterwards', async () => {
    const running = new Set<string>();
    const overlaps: string[] = [];
    const handled: string[] = [];
    const gate = deferred();
    let gated = true;
    const queue = new WorkQueue({
      concurrency: 4,
      handler: async (key) => {
        if (running.has(key)) overlaps.push(key);
        running.add(key);
        handled.push(key);
        if (key === 'a/1' && gated) {
          gated = false;
          await gate.promise;
        }
        running.delete(key);
        return {};
      },
    });
    queue.start();
    queue.add('a/1');
    queue.add('a/1');
    queue.add('a/1');
    queue.add('b/1');
    expect(queue.length).toBe(0);
    expect(handled).toEqual(['a/1', 'b/1']);
    gate.resolve();
    await queue.idle();
    expect(handled).toEqual(['a/1', 'b/1', 'a/1']);
    expect(overlaps).toEqual([]);
    await queue.shutdown();
  });

  it('drops what is queued in every namespace on shutdown, and takes nothing after', async () => {
    const { queue, handled } = recordingQueue();
    for (const key of ['a/1', 'b/1', 'b/2']) queue.add(key);
    await queue.shutdown();
    expect(queue.length).toBe(0);
    queue.add('c/1');
    queue.start();
    await queue.idle();
    expect(handled).toEqual([]);
  });
});
