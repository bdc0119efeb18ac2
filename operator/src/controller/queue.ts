/**
 * The work queue of a level-based controller, in the shape of client-go's: keys, not events; a key
 * queued twice runs once; a key is never processed by two workers at once (an add during processing
 * runs it again afterwards); failures retry with per-key exponential backoff; delayed adds wake a
 * key at a given time (the next rotation), keeping only the earliest wake-up.
 *
 * Fair across namespaces: each namespace has a FIFO of its own, and workers take one key from each
 * namespace with keys waiting in turn (round-robin). A namespace with thousands of keys queued (a
 * rotation storm, a tenant creating ApiKeys in bulk) delays another namespace's key by at most one
 * key per busy namespace, not by its whole backlog. Within a namespace, keys run in the order queued.
 */

export interface QueueOptions {
  readonly concurrency: number;
  /** Processes one key; a rejection is a failure and retries with backoff. */
  readonly handler: (key: string) => Promise<HandlerResult>;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /** A failure's own lower bound on the retry delay (the server's Retry-After). */
  readonly retryAfterOf?: (error: unknown) => number | undefined;
  /** Told when a key starts processing, with how long it waited in the queue. */
  readonly onStart?: (key: string, waitedMs: number) => void;
  /** Told about each failure, with the delay before the retry. */
  readonly onFailure?: (key: string, error: unknown, retryInMs: number) => void;
}

export interface HandlerResult {
  /** Look at the key again after this long. */
  readonly requeueAfterMs?: number | undefined;
}

/** Wake-ups further away than this are re-checked anyway; the next wake-up is computed again then. */
export const MAX_REQUEUE_MS = 12 * 3_600_000;

/** setTimeout cannot wait longer than this (about 24.8 days); later wake-ups are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The namespace of a queue key: "namespace/name" (ApiKeys, issuers), or "#kind/namespace" (a
 * per-namespace task such as the readers ConfigMap, which takes its turn with that namespace's keys).
 * Keys with no "/" share the unnamed namespace "".
 */
export function namespaceOf(key: string): string {
  const slash = key.indexOf('/');
  if (slash < 0) return '';
  return key.startsWith('#') ? key.slice(slash + 1) : key.slice(0, slash);
}

/** A FIFO with O(1) push and shift (Array.prototype.shift copies the whole array once it is large). */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1_024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

export class WorkQueue {
  readonly #options: QueueOptions;
  /** The queued keys of each namespace that has any, in the order they were queued. */
  readonly #byNamespace = new Map<string, Fifo<string>>();
  /** Namespaces with keys queued, in turn: the first gives the next key, then goes to the back. */
  readonly #turns = new Fifo<string>();
  /** Queued keys, with when they were queued. */
  readonly #queued = new Map<string, number>();
  readonly #processing = new Set<string>();
  /** Keys added while being processed: queued again when processing ends. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #inFlight = new Set<Promise<void>>();
  #shuttingDown = false;
  /** Keys are accepted before start() (as informers fill their caches) but processed only after. */
  #running = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: QueueOptions) {
    this.#options = options;
  }

  get length(): number {
    return this.#queued.size;
  }

  add(key: string): void {
    if (this.#shuttingDown) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.set(key, performance.now());
    const namespace = namespaceOf(key);
    let keys = this.#byNamespace.get(namespace);
    if (keys === undefined) {
      keys = new Fifo();
      this.#byNamespace.set(namespace, keys);
      this.#turns.push(namespace);
    }
    keys.push(key);
    this.#pump();
  }

  /** Begins processing; until then keys only accumulate. */
  start(): void {
    this.#running = true;
    this.#pump();
  }

  /** Adds `key` after `delayMs`, unless it is already due to be added sooner. */
  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing !== undefined && existing.at <= at) return;
    clearTimeout(existing?.timer);
    const timer = setTimeout(
      () => {
        this.#timers.delete(key);
        if (at - Date.now() > 0) this.addAfter(key, at - Date.now());
        else this.add(key);
      },
      Math.min(delayMs, MAX_TIMER_MS),
    );
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Forgets a key entirely: its backoff and any wake-up (the object was deleted). */
  forget(key: string): void {
    this.#failures.delete(key);
    clearTimeout(this.#timers.get(key)?.timer);
    this.#timers.delete(key);
  }

  /** Resolves when nothing is queued or being processed. */
  async idle(): Promise<void> {
    if (!this.#running || (this.#queued.size === 0 && this.#processing.size === 0)) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops taking work, drops what is queued, and waits for the keys being processed. */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#byNamespace.clear();
    this.#turns.clear();
    this.#queued.clear();
    await Promise.all(this.#inFlight);
  }

  #pump(): void {
    while (
      this.#running &&
      !this.#shuttingDown &&
      this.#processing.size < this.#options.concurrency &&
      this.#queued.size > 0
    ) {
      const key = this.#next();
      const queuedAt = this.#queued.get(key) ?? performance.now();
      this.#queued.delete(key);
      this.#options.onStart?.(key, performance.now() - queuedAt);
      this.#processing.add(key);
      const work = this.#process(key).finally(() => this.#inFlight.delete(work));
      this.#inFlight.add(work);
    }
    if (this.#running && this.#queued.size === 0 && this.#processing.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** The next key: the oldest of the namespace whose turn it is; that namespace then goes to the back. */
  #next(): string {
    const namespace = this.#turns.shift() as string;
    const keys = this.#byNamespace.get(namespace) as Fifo<string>;
    const key = keys.shift() as string;
    if (keys.length > 0) this.#turns.push(namespace);
    else this.#byNamespace.delete(namespace);
    return key;
  }

  async #process(key: string): Promise<void> {
    try {
      const result = await this.#options.handler(key);
      this.#failures.delete(key);
      if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      const failures = (this.#failures.get(key) ?? 0) + 1;
      this.#failures.set(key, failures);
      const { baseMs, maxMs } = this.#options.backoff ?? { baseMs: 200, maxMs: 300_000 };
      const delay = Math.max(
        Math.min(baseMs * 2 ** (failures - 1), maxMs),
        this.#options.retryAfterOf?.(error) ?? 0,
      );
      this.#options.onFailure?.(key, error, delay);
      this.addAfter(key, delay);
    } finally {
      this.#processing.delete(key);
      if (this.#dirty.delete(key)) this.add(key);
      this.#pump();
    }
  }
}
