import {
  makeInformer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { toKubeError } from './errors.ts';

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
  /** Called for every add, update and delete; must only enqueue work. */
  readonly onChange: (object: T) => void;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
}

/**
 * The client's informer (list, then watch; relist on 410 Gone) made to survive: it stops on any
 * other error, so this restarts it with exponential backoff and jitter, ignores the aborts its own
 * restarts cause, and tells whether the cache has synced since the last (re)start.
 */
export class ResilientInformer<T extends KubernetesObject> {
  readonly #options: InformerOptions<T>;
  readonly #informer: ReturnType<typeof makeInformer<T>>;
  #listed = false;
  #stopped = true;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    const list = async () => {
      const result = await options.list();
      this.#listed = true;
      this.#failures = 0;
      return result;
    };
    this.#informer = makeInformer(options.kc, options.path, list, options.labelSelector);
    const forward = (object: T) => {
      try {
        options.onChange(object);
      } catch (error) {
        options.logger.error({ err: error, informer: options.name }, 'informer handler failed');
      }
    };
    this.#informer.on('add', forward);
    this.#informer.on('update', forward);
    this.#informer.on('delete', forward);
    this.#informer.on('error', (error: unknown) => {
      this.#onError(error);
    });
  }

  /** Starts and waits until the first list succeeded (retrying failures), or `signal` aborts. */
  async start(signal?: AbortSignal): Promise<void> {
    this.#stopped = false;
    await this.#informer.start();
    while (!this.#listed) {
      if (signal?.aborted) throw new Error(`stopped before the ${this.#options.name} cache synced`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    await this.#informer.stop();
  }

  /** True once a list has succeeded; the cache is then complete and safe to act on. */
  get synced(): boolean {
    return this.#listed;
  }

  get(namespace: string, name: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  list(): readonly T[] {
    return this.#informer.list();
  }

  #onError(error: unknown): void {
    if (this.#stopped) return; // The abort of our own stop().
    const { logger, name, backoff = { baseMs: 1_000, maxMs: 30_000 } } = this.#options;
    this.#failures += 1;
    const delay = Math.min(backoff.baseMs * 2 ** (this.#failures - 1), backoff.maxMs);
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    logger.warn(
      {
        err: toKubeError(`watch ${name}`, error),
        informer: name,
        retryInMs: jittered,
        failures: this.#failures,
      },
      'watch failed; restarting',
    );
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (this.#stopped) return;
      this.#informer.start().catch((startError: unknown) => {
        this.#onError(startError);
      });
    }, jittered);
  }
}
