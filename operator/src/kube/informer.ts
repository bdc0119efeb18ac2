import {
  makeInformer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { errorFields, toKubeError } from './errors.ts';

export interface InformerOptions<T extends KubernetesObject> {
  /** For logs: "apikeys", "secrets". */
  readonly name: string;
  readonly kc: KubeConfig;
  /** The watch path, e.g. /api/v1/namespaces/ns/secrets. */
  readonly path: string;
  /** Lists what the path watches, with the same label selector. */
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  readonly logger: Logger;
  /**
   * Called for every add, update and delete (with which it was); must only enqueue work. A relist
   * reports every object it found as an update, and every object that vanished as a delete.
   */
  readonly onChange: (object: T, change: Change) => void;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /**
   * A watch that has shown no sign of life (no event, no reconnect) for this long is presumed stuck
   * and the cache is relisted. The client reconnects a quiet watch every 30 s or so, so 2 minutes of
   * silence means a connection that hangs without failing.
   */
  readonly staleAfterMs?: number;
  /** Told of every restart after a failure, every relist, and every stale watch (metrics). */
  readonly onTransition?: (kind: 'restart' | 'relist' | 'stale') => void;
}

export type Change = 'add' | 'update' | 'delete';

const DEFAULT_STALE_AFTER_MS = 120_000;

const identity = (object: KubernetesObject) =>
  `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;

type ClientInformer<T extends KubernetesObject> = ReturnType<typeof makeInformer<T>>;

/**
 * The client's informer (list, then watch; relist on 410 Gone) made to survive: it stops on any
 * other error, so this restarts it with exponential backoff and jitter, ignores the aborts its own
 * restarts cause, tells whether the cache has synced, and can relist from scratch on demand.
 */
export class ResilientInformer<T extends KubernetesObject> {
  readonly #options: InformerOptions<T>;
  #informer: ClientInformer<T>;
  #listed = false;
  #stopped = true;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  /** When the watch last showed a sign of life (performance.now()). */
  #aliveAt = performance.now();

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.#informer = this.#create(() => {
      this.#listed = true;
    });
  }

  /** A client informer wired to this wrapper; `onListed` runs after each successful list. */
  #create(onListed: () => void): ClientInformer<T> {
    const options = this.#options;
    const informer = makeInformer(
      options.kc,
      options.path,
      async () => {
        const result = await options.list();
        this.#aliveAt = performance.now();
        onListed();
        this.#failures = 0;
        return result;
      },
      options.labelSelector,
    );
    const forward = (change: Change) => (object: T) => {
      // Events of an informer replaced by relist() are not ours any more.
      if (informer !== this.#informer) return;
      this.#aliveAt = performance.now();
      this.#notify(object, change);
    };
    informer.on('add', forward('add'));
    informer.on('update', forward('update'));
    informer.on('delete', forward('delete'));
    informer.on('connect', () => {
      if (informer === this.#informer) this.#aliveAt = performance.now();
    });
    informer.on('error', (error: unknown) => {
      if (informer === this.#informer) this.#onError(error);
    });
    return informer;
  }

  #notify(object: T, change: Change): void {
    try {
      this.#options.onChange(object, change);
    } catch (error) {
      this.#options.logger.error(
        { error: errorFields(error), informer: this.#options.name },
        'informer handler failed',
      );
    }
  }

  /** Starts and waits until the first list succeeded (retrying failures), or `signal` aborts. */
  async start(signal?: AbortSignal): Promise<void> {
    this.#stopped = false;
    this.#startWatchdog();
    await this.#informer.start();
    while (!this.#listed) {
      if (signal?.aborted) throw new Error(`stopped before the ${this.#options.name} cache synced`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * Lists everything again into a fresh cache and swaps it in once complete, then reports every
   * object as changed, and every object the old cache held and the fresh one does not as deleted:
   * catches anything a watch may have missed, deletions too, without an empty cache in between.
   */
  async relist(): Promise<void> {
    const progress = { listed: false };
    const fresh = this.#create(() => {
      progress.listed = true;
    });
    const previous = this.#informer;
    await fresh.start();
    if (!progress.listed) {
      await fresh.stop();
      throw new Error(`relist of ${this.#options.name} failed`);
    }
    const before = previous.list();
    this.#informer = fresh;
    this.#aliveAt = performance.now();
    this.#options.onTransition?.('relist');
    await previous.stop();
    const found = fresh.list();
    const present = new Set(found.map(identity));
    const vanished = before.filter((object) => !present.has(identity(object)));
    for (const object of found) this.#notify(object, 'update');
    for (const object of vanished) this.#notify(object, 'delete');
    this.#options.logger.info(
      { informer: this.#options.name, objects: found.length, vanished: vanished.length },
      'relisted',
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#watchdog);
    await this.#informer.stop();
  }

  /** True once a list has succeeded; the cache is then complete and safe to act on. */
  get synced(): boolean {
    return this.#listed;
  }

  get(namespace: string, name: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  /** Every cached object, or those of one namespace. */
  list(namespace?: string): readonly T[] {
    return this.#informer.list(namespace);
  }

  #startWatchdog(): void {
    const staleAfterMs = this.#options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    clearInterval(this.#watchdog);
    this.#aliveAt = performance.now();
    this.#watchdog = setInterval(
      () => {
        const silentMs = performance.now() - this.#aliveAt;
        if (this.#stopped || silentMs < staleAfterMs) return;
        const { logger, name } = this.#options;
        logger.warn({ informer: name, silentMs: Math.round(silentMs) }, 'watch silent too long; relisting');
        this.#options.onTransition?.('stale');
        this.#aliveAt = performance.now(); // one relist at a time
        this.relist().catch((error: unknown) => {
          logger.warn({ error: errorFields(error), informer: name }, 'relist after a silent watch failed');
        });
      },
      Math.max(100, Math.min(staleAfterMs / 4, 30_000)),
    );
    this.#watchdog.unref();
  }

  #onError(error: unknown): void {
    if (this.#stopped) return; // The abort of our own stop().
    const { logger, name, backoff = { baseMs: 1_000, maxMs: 30_000 } } = this.#options;
    this.#failures += 1;
    const delay = Math.min(backoff.baseMs * 2 ** (this.#failures - 1), backoff.maxMs);
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    logger.warn(
      {
        error: errorFields(toKubeError(`watch ${name}`, error)),
        informer: name,
        retryInMs: jittered,
        failures: this.#failures,
      },
      'watch failed; restarting',
    );
    clearTimeout(this.#restartTimer);
    const informer = this.#informer;
    this.#restartTimer = setTimeout(() => {
      if (this.#stopped || informer !== this.#informer) return;
      this.#options.onTransition?.('restart');
      informer.start().catch((startError: unknown) => {
        this.#onError(startError);
      });
    }, jittered);
  }
}
