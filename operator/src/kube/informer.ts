import {
  ListWatch,
  Watch,
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
  /**
   * Lists one page of what the path watches, with the same label selector and the page's field
   * selector (one of `fieldSelectors`). A list that ignores the page comes in one response.
   */
  readonly list: (page: ListPage) => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  /**
   * One watch per field selector, whose caches read as one: a field selector cannot say "or" (Secrets
   * of either of keyrotor's types). Default: one watch without a field selector.
   */
  readonly fieldSelectors?: readonly string[];
  /**
   * Applied to every object before it is cached or reported, listed or watched: what the cache must not
   * hold (another's data) is dropped as each page or event arrives. Must not throw: the client's watch
   * silently drops an event whose handler throws.
   */
  readonly transform?: (object: T) => T;
  /** Objects per list request (default 500, client-go's pager's). */
  readonly pageSize?: number;
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

/** One list request: `_continue` as the API client names it (the API's `continue`). */
export interface ListPage {
  readonly limit: number;
  readonly _continue?: string;
  readonly fieldSelector?: string;
}

const DEFAULT_STALE_AFTER_MS = 120_000;
const DEFAULT_PAGE_SIZE = 500;

const identity = (object: KubernetesObject) =>
  `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;

/** The typed client names it `_continue`; a custom object list is plain JSON, with `continue`. */
function continueOf(list: KubernetesListObject<KubernetesObject>): string | undefined {
  const metadata = list.metadata as { _continue?: string; continue?: string } | undefined;
  const token = metadata?._continue ?? metadata?.continue;
  return token === undefined || token === '' ? undefined : token;
}

const OBJECT_PHASES = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/** The client's watch, each object transformed before the cache sees it (the raw event not passed on). */
function transformingWatch<T>(kc: KubeConfig, transform: (object: T) => T): Watch {
  const watch = new Watch(kc);
  const watchPath = watch.watch.bind(watch);
  watch.watch = (path, queryParams, callback, done) =>
    watchPath(
      path,
      queryParams,
      (phase: string, object: T) => {
        callback(phase, OBJECT_PHASES.has(phase) ? transform(object) : object);
      },
      done,
    );
  return watch;
}

/**
 * The client's informer (list, then watch; relist on 410 Gone) made to survive: it stops on any
 * other error, so this restarts it with exponential backoff and jitter, ignores the aborts its own
 * restarts cause, tells whether the cache has synced, and can relist from scratch on demand. Lists
 * are paged, and with `fieldSelectors` there is one client informer per selector, read as one cache.
 */
export class ResilientInformer<T extends KubernetesObject> {
  readonly #options: InformerOptions<T>;
  #informers: readonly ListWatch<T>[];
  #listed = false;
  #stopped = true;
  #failures = 0;
  /** One per client informer: two failing at once must both restart. */
  readonly #restartTimers = new Map<ListWatch<T>, NodeJS.Timeout>();
  #watchdog: NodeJS.Timeout | undefined;
  /** When the watch last showed a sign of life (performance.now()). */
  #aliveAt = performance.now();

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.#informers = this.#create(() => {
      this.#listed = true;
    });
  }

  /** Client informers wired to this wrapper; `onListed` runs after each list once every one has listed. */
  #create(onListed: () => void): ListWatch<T>[] {
    const { kc, path, labelSelector, transform, fieldSelectors } = this.#options;
    const selectors = fieldSelectors ?? [undefined];
    const listed = new Set<number>();
    return selectors.map((fieldSelector, index) => {
      const watch = transform === undefined ? new Watch(kc) : transformingWatch(kc, transform);
      const listAll = async () => {
        const result = await this.#listAll(fieldSelector);
        this.#aliveAt = performance.now();
        listed.add(index);
        if (listed.size === selectors.length) onListed();
        this.#failures = 0;
        return result;
      };
      const informer = new ListWatch<T>(path, watch, listAll, false, labelSelector, fieldSelector);
      const current = () => this.#informers.includes(informer);
      const forward = (change: Change) => (object: T) => {
        // Events of an informer replaced by relist() are not ours any more.
        if (!current()) return;
        this.#aliveAt = performance.now();
        this.#notify(object, change);
      };
      informer.on('add', forward('add'));
      informer.on('update', forward('update'));
      informer.on('delete', forward('delete'));
      informer.on('connect', () => {
        if (current()) this.#aliveAt = performance.now();
      });
      informer.on('error', (error: unknown) => {
        if (current()) this.#onError(informer, error);
      });
      return informer;
    });
  }

  /**
   * Every page of a list, each transformed as it arrives: a huge namespace never comes in one
   * response, and what the transform drops is garbage before the next page is asked for. Pages of one
   * list are of one snapshot, so the last page's resourceVersion is the list's. An expired continue
   * token (410) fails the list, and the informer restarts it from the first page.
   */
  async #listAll(fieldSelector: string | undefined): Promise<KubernetesListObject<T>> {
    const { list, transform, pageSize = DEFAULT_PAGE_SIZE } = this.#options;
    const items: T[] = [];
    let token: string | undefined;
    let page: KubernetesListObject<T>;
    do {
      page = await list({
        limit: pageSize,
        ...(token === undefined ? {} : { _continue: token }),
        ...(fieldSelector === undefined ? {} : { fieldSelector }),
      });
      for (const item of page.items) items.push(transform === undefined ? item : transform(item));
      token = continueOf(page);
      this.#aliveAt = performance.now();
    } while (token !== undefined);
    return { ...page, items };
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
    await Promise.all(this.#informers.map((informer) => informer.start()));
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
    const previous = this.#informers;
    await Promise.all(fresh.map((informer) => informer.start()));
    if (!progress.listed) {
      await Promise.all(fresh.map((informer) => informer.stop()));
      throw new Error(`relist of ${this.#options.name} failed`);
    }
    const before = previous.flatMap((informer) => informer.list());
    this.#informers = fresh;
    this.#aliveAt = performance.now();
    this.#options.onTransition?.('relist');
    await Promise.all(previous.map((informer) => informer.stop()));
    const found = fresh.flatMap((informer) => informer.list());
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
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
    this.#restartTimers.clear();
    clearInterval(this.#watchdog);
    await Promise.all(this.#informers.map((informer) => informer.stop()));
  }

  /** True once a list has succeeded; the cache is then complete and safe to act on. */
  get synced(): boolean {
    return this.#listed;
  }

  get(namespace: string, name: string): T | undefined {
    for (const informer of this.#informers) {
      const found = informer.get(name, namespace);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Every cached object, or those of one namespace. */
  list(namespace?: string): readonly T[] {
    return this.#informers.length === 1
      ? (this.#informers[0]?.list(namespace) ?? [])
      : this.#informers.flatMap((informer) => informer.list(namespace));
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

  #onError(informer: ListWatch<T>, error: unknown): void {
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
    clearTimeout(this.#restartTimers.get(informer));
    const timer = setTimeout(() => {
      this.#restartTimers.delete(informer);
      if (this.#stopped || !this.#informers.includes(informer)) return;
      this.#options.onTransition?.('restart');
      informer.start().catch((startError: unknown) => {
        this.#onError(informer, startError);
      });
    }, jittered);
    this.#restartTimers.set(informer, timer);
  }
}
