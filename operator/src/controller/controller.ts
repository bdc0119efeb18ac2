// The manager: one set of shared caches (caches.ts) and one controller per concern over them: ApiKeys
// (apikeys.ts), issuers' verifiers (verifiers.ts), readers (readers.ts) and workloads (workloads.ts). It
// builds the clients, routes each cache change to the controllers it concerns, and owns what they
// share: the seal key, leadership, readiness, the periodic relist and resync.
import type { Logger } from 'pino';

import type { ApiKey } from '../api/types.ts';
import { generateKey } from '../keys/format.ts';
import { EventRecorder } from '../kube/events.ts';
import type { ClientOptions } from '../kube/client.ts';
import { errorFields } from '../kube/errors.ts';
import { TokenBucket } from '../kube/rate-limiter.ts';
import { DEFAULT_SEAL_SECRET_NAME, loadSealKey } from '../kube/seal-key.ts';
import { WorkloadRestarter } from '../kube/restarter.ts';
import { KubeWriter } from '../kube/writes.ts';
import { OperatorMetrics } from '../observability/metrics.ts';
import type { DecideConfig } from '../reconcile/decide.ts';
import { ApiKeyController } from './apikeys.ts';
import { SharedCaches, type InformerLifecycle } from './caches.ts';
import type { ConcernOptions } from './concern.ts';
import { DEFAULT_BURST, DEFAULT_QPS, type ControllerOptions } from './manager-options.ts';
import { ReadersController } from './readers.ts';
import { routes } from './routes.ts';
import { IssuerVerifiers } from './verifiers.ts';
import { WorkloadsController } from './workloads.ts';

export { DEFAULT_BURST, DEFAULT_QPS, type ControllerOptions } from './manager-options.ts';

const DEFAULT_VERIFIER_BATCH_MS = 1_000;

/** The same client options without the leader's write fence. */
function unfenced(options: ClientOptions): ClientOptions {
  const { writeBudgetMs: _fence, ...rest } = options;
  return rest;
}

/**
 * The operator's controllers, wired: start() syncs the caches and, if this replica leads (always
 * without leader election), reconciles every ApiKey once and keeps reconciling.
 */
export class Controller {
  readonly #options: ControllerOptions;
  readonly #logger: Logger;
  readonly #caches: SharedCaches;
  readonly #apiKeys: ApiKeyController;
  readonly #verifiers: IssuerVerifiers;
  /** The readers controller, unless manageReaders is false. */
  readonly #readers: ReadersController | undefined;
  /** The workloads controller, unless manageWorkloads is false. */
  readonly #workloads: WorkloadsController | undefined;
  readonly #events: EventRecorder;
  readonly #restarter: WorkloadRestarter;
  readonly #clientOptions: ClientOptions;
  readonly #now: () => Date;
  /** Loaded in start(), before the first reconcile. */
  #sealKey: Uint8Array | undefined;
  /** The operator's Prometheus metrics (served by the caller). */
  readonly metrics: OperatorMetrics;
  #resyncTimer: NodeJS.Timeout | undefined;
  #relistTimer: NodeJS.Timeout | undefined;
  #started = false;
  #leading: boolean;
  #working = false;

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => new Date());
    const decideConfig = options.decideConfig ?? { generateKey };
    const minRotationIntervalMs = decideConfig.minRotationIntervalMs ?? options.minRotationIntervalMs;
    const baseConfig =
      minRotationIntervalMs === undefined ? decideConfig : { ...decideConfig, minRotationIntervalMs };
    this.#leading = options.writeBudgetMs === undefined;
    const limiter = new TokenBucket(options.qps ?? DEFAULT_QPS, options.burst ?? DEFAULT_BURST);
    this.metrics = new OperatorMetrics({
      apiKeys: () => this.#caches.apiKeys(),
      queueDepth: () => this.#apiKeys.queueDepth,
      ready: () => this.ready,
      leading: () => this.#working && (options.writeBudgetMs?.() ?? 1) > 0,
    });
    const clientOptions: ClientOptions = {
      limiter,
      onRequest: (method) => {
        this.metrics.apiRequests.inc({ method });
        options.onRequest?.(method);
      },
      onResponse: (code) => {
        this.metrics.apiResponses.inc({ code: String(code) });
      },
      onFailure: (reason) => {
        this.metrics.apiFailures.inc({ reason });
      },
      userAgent: `keyrotor/${options.instance}`,
      ...(options.writeBudgetMs ? { writeBudgetMs: options.writeBudgetMs } : {}),
    };
    this.#clientOptions = clientOptions;
    const { kc, logger, namespaces } = options;
    const writer = new KubeWriter(kc, clientOptions);
    this.#events = new EventRecorder(kc, logger, {
      ...clientOptions,
      instance: options.instance,
      now: this.#now,
    });
    this.#restarter = new WorkloadRestarter(kc, this.#events, logger, {
      ...clientOptions,
      debounceMs: options.restartDebounceMs ?? 5_000,
      now: this.#now,
    });
    const watchOptions: ConcernOptions['watchOptions'] = {
      onTransition: (kind) => {
        this.metrics.informerTransitions.inc({ kind });
      },
      ...(options.staleAfterMs === undefined ? {} : { staleAfterMs: options.staleAfterMs }),
    };
    this.#caches = new SharedCaches(
      { kc, logger, namespaces, clientOptions, watchOptions, metrics: this.metrics },
      routes(() => ({
        caches: this.#caches,
        apiKeys: this.#apiKeys,
        verifiers: this.#verifiers,
        readers: this.#readers,
        workloads: this.#workloads,
      })),
    );
    const caches = this.#caches;
    this.#verifiers = new IssuerVerifiers({
      caches: {
        apiKeys: () => caches.apiKeys(),
        apiKey: (namespace, name) => caches.apiKey(namespace, name),
        issuer: (namespace, name) => caches.issuer(namespace, name),
        secret: (namespace, name) => caches.secret(namespace, name),
        namespaceLabels: (namespace) => caches.namespaceLabels(namespace),
        sealKey: () => this.#requireSealKey(),
        wroteSecret: (namespace, name, written) => {
          caches.wroteSecret(namespace, name, written);
        },
        wroteIssuer: (namespace, name, written) => {
          caches.wroteIssuer(namespace, name, written);
        },
      },
      writer,
      events: this.#events,
      metrics: this.metrics,
      logger,
      now: this.#now,
      batchMs: options.verifierBatchMs ?? DEFAULT_VERIFIER_BATCH_MS,
      ...(options.verifierMaxBytes === undefined ? {} : { maxBytes: options.verifierMaxBytes }),
    });
    this.#apiKeys = new ApiKeyController({
      caches,
      writer,
      events: this.#events,
      restarter: this.#restarter,
      verifiers: this.#verifiers,
      readers: () => this.#readers,
      workloads: () => this.#workloads,
      metrics: this.metrics,
      logger,
      now: this.#now,
      concurrency: options.concurrency,
      decideConfig: (): DecideConfig => ({ ...baseConfig, sealKey: this.#requireSealKey() }),
    });
    const concern: ConcernOptions = {
      kc,
      logger,
      namespaces,
      clientOptions,
      watchOptions,
      events: this.#events,
      now: this.#now,
    };
    if (options.manageReaders !== false) {
      this.#readers = new ReadersController({
        ...concern,
        caches: {
          apiKeysIn: (namespace) =>
            caches
              .apiKeysIn(namespace)
              .map((apiKey) => caches.apiKey(namespace, apiKey.metadata.name) ?? apiKey),
          apiKey: (namespace, name) => caches.apiKey(namespace, name),
          secret: (namespace, name) => caches.secret(namespace, name),
          namespaceLabels: (namespace) => caches.namespaceLabels(namespace),
        },
      });
    }
    if (options.manageWorkloads !== false) {
      this.#workloads = new WorkloadsController({
        ...concern,
        caches: {
          apiKeys: () => caches.apiKeys(),
          apiKeysIn: (namespace) => caches.apiKeysIn(namespace),
          apiKey: (namespace, name) => caches.apiKey(namespace, name),
        },
      });
    }
  }

  #informers(): InformerLifecycle[] {
    return [...this.#caches.informers(), ...(this.#readers?.informers() ?? [])];
  }

  /**
   * Starts the watches and waits until every cache has synced; then, if this replica leads (always
   * without leader election), reconciles every ApiKey once and keeps reconciling.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const started = Date.now();
    this.#sealKey = await loadSealKey(
      this.#options.kc,
      this.#options.sealSecret ?? { namespace: 'keyrotor-system', name: DEFAULT_SEAL_SECRET_NAME },
      // Not fenced by leadership: a standby needs the seal key too, and its creation is settled by the
      // API server (one create wins, the others read it).
      unfenced(this.#clientOptions),
    );
    await Promise.all(this.#informers().map((informer) => informer.start(signal)));
    await this.#workloads?.startCaches();
    this.#started = true;
    this.#logger.info(
      { durationMs: Date.now() - started, namespaces: this.#options.namespaces },
      'caches synced',
    );
    this.#relistTimer = setInterval(
      () => {
        this.relist().catch((error: unknown) => {
          this.#logger.warn({ error: errorFields(error) }, 'periodic relist failed; the watches go on');
        });
      },
      this.#options.relistMs ?? 60 * 60_000,
    );
    this.#relistTimer.unref();
    this.#startWork();
  }

  /** This replica has become the leader: reconcile, as soon as the caches have synced. */
  lead(): void {
    this.#leading = true;
    this.#startWork();
  }

  #startWork(): void {
    // Acting on a cache that is still filling would mistake a Secret not yet listed for a missing one.
    if (!this.#started || !this.#leading || this.#working) return;
    this.#working = true;
    this.#resyncAll();
    this.#apiKeys.start();
    this.#readers?.start();
    this.#workloads?.start();
    this.#verifiers.start();
    const resyncMs = this.#options.resyncMs ?? 10 * 60_000;
    this.#resyncTimer = setInterval(() => {
      this.#resyncAll();
    }, resyncMs);
    this.#resyncTimer.unref();
  }

  /** Stops taking work, finishes the reconciles in flight and the events they produced. */
  async stop(): Promise<void> {
    clearInterval(this.#resyncTimer);
    clearInterval(this.#relistTimer);
    await Promise.all(this.#informers().map((informer) => informer.stop()));
    await this.#apiKeys.shutdown();
    await this.#readers?.shutdown();
    await this.#workloads?.shutdown();
    await this.#verifiers.shutdown();
    await this.#restarter.flush();
    await this.#events.flush();
  }

  /** True when all caches have synced (readiness; a standby with warm caches is ready). */
  get ready(): boolean {
    return (
      this.#started &&
      this.#informers().every((informer) => informer.synced) &&
      (this.#workloads?.synced ?? true)
    );
  }

  /** Resolves when no reconcile is queued or running and the events they recorded were sent. */
  async idle(): Promise<void> {
    await this.#apiKeys.idle();
    await this.#readers?.idle();
    await this.#workloads?.idle();
    await this.#verifiers.idle();
    await this.#events.flush();
  }

  /** Queues every cached ApiKey, as the periodic resync does. */
  resyncNow(): void {
    this.#resyncAll();
  }

  /** Lists everything again from the API server (fresh caches), then looks at every ApiKey. */
  async relist(): Promise<void> {
    await Promise.all(this.#informers().map((informer) => informer.relist()));
    await this.#workloads?.relist();
    this.#resyncAll();
  }

  #resyncAll(): void {
    this.#verifiers.resync(this.#caches.issuers());
    const apiKeys: ApiKey[] = this.#caches.apiKeys();
    const namespaces = new Set<string>();
    for (const apiKey of apiKeys) {
      this.#apiKeys.enqueue(apiKey.metadata.namespace, apiKey.metadata.name);
      namespaces.add(apiKey.metadata.namespace);
    }
    this.#readers?.resync(namespaces);
    this.#workloads?.resync(apiKeys);
  }

  #requireSealKey(): Uint8Array {
    if (this.#sealKey === undefined)
      throw new Error('the seal key is loaded in start(), before any reconcile');
    return this.#sealKey;
  }
}
