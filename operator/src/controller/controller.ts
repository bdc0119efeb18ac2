import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type V1Namespace,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

import {
  GROUP,
  ISSUER_KIND,
  ISSUER_PLURAL,
  LABEL_API_KEY,
  LABEL_ISSUER,
  MANAGED_SECRET_SELECTOR,
  PLURAL,
  VERSION,
} from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer } from '../api/types.ts';
import { referencesIssuer } from '../issuer/verifier-plan.ts';
import { generateKey } from '../keys/format.ts';
import { EventRecorder } from '../kube/events.ts';
import { NOT_LEADER, makeClient, type ClientOptions } from '../kube/client.ts';
import { KubeError, errorFields, failureSummary, isConflict, isNotFound } from '../kube/errors.ts';
import { ResilientInformer } from '../kube/informer.ts';
import {
  SECRET_FIELD_SELECTORS,
  SECRET_LIST_PAGE_SIZE,
  cachedSecretView,
  registerSecretCacheMetrics,
} from '../kube/secret-cache.ts';
import { TokenBucket } from '../kube/rate-limiter.ts';
import { DEFAULT_SEAL_SECRET_NAME, loadSealKey, type SealSecretRef } from '../kube/seal-key.ts';
import { WorkloadRestarter } from '../kube/restarter.ts';
import { KubeWriter } from '../kube/writes.ts';
import { writeAudit } from '../observability/audit.ts';
import { OperatorMetrics } from '../observability/metrics.ts';
import { decide, recordFailure, type DecideConfig, type Plan } from '../reconcile/decide.ts';
import { LABEL_ENVIRONMENT } from '../reconcile/environment.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { READY, findCondition } from '../reconcile/conditions.ts';
import { readersOf } from '../reconcile/readers.ts';
import { Reason } from '../reconcile/reasons.ts';
import { secretNameOf } from '../reconcile/spec.ts';
import { lagsStatus } from '../reconcile/trust.ts';
import { RecentWrites } from './recent-writes.ts';
import type { ConcernOptions } from './concern.ts';
import { MAX_REQUEUE_MS, WorkQueue } from './queue.ts';
import { ReadersController } from './readers.ts';
import { IssuerVerifiers } from './verifiers.ts';
import { WorkloadsController } from './workloads.ts';

type InformerLifecycle = Pick<ResilientInformer<ApiKey>, 'start' | 'stop' | 'relist' | 'synced'>;
type SecretObject = SecretLike & {
  metadata?: SecretLike['metadata'] & { name?: string; namespace?: string };
};

export interface ControllerOptions {
  readonly kc: KubeConfig;
  readonly logger: Logger;
  /** Namespaces to watch; all when empty. */
  readonly namespaces: readonly string[];
  /** Keys reconciled at once. */
  readonly concurrency: number;
  /** Identifies this process in Events (reportingInstance), e.g. the Pod name. */
  readonly instance: string;
  /** Every ApiKey is looked at again this often, whatever the watches say. */
  readonly resyncMs?: number;
  /**
   * Everything is listed again from the API server this often (default 1 h), on standbys too: a
   * safety net under the watches, which could miss an event without failing.
   */
  readonly relistMs?: number;
  readonly now?: () => Date;
  /** Everything decide() needs but the seal key, which the controller loads when it starts. */
  readonly decideConfig?: Omit<DecideConfig, 'sealKey'>;
  /**
   * The Secret that holds keyrotor's seal key (kube/seal-key.ts), created if missing: in keyrotor's own
   * namespace, never one a tenant may write. Default keyrotor-system/keyrotor-seal.
   */
  readonly sealSecret?: SealSecretRef;
  /**
   * Automatic rotations of one key are at least this far apart (DecideConfig.minRotationIntervalMs;
   * `--min-rotation-interval`). A decideConfig that sets its own value keeps it.
   */
  readonly minRotationIntervalMs?: number;
  /** Counts API requests by HTTP method (metrics, benchmarks, tests). */
  readonly onRequest?: (method: string) => void;
  /** Client-side request rate limit for the whole process (client-go's QPS and burst). */
  readonly qps?: number;
  readonly burst?: number;
  /** Restart requests for one workload within this window become one restart. */
  readonly restartDebounceMs?: number;
  /**
   * Run the readers controller (controller/readers.ts): a Role and RoleBinding per ApiKey for its
   * readers, and each namespace's mount guard.
   */
  readonly manageReaders?: boolean;
  /**
   * Run the workloads controller (controller/workloads.ts): watch Deployments, StatefulSets, DaemonSets
   * and Argo Rollouts, report missing rolloutRestartTargets (condition RestartTargetsReady), and restart
   * the workloads annotated keyrotor.dev/reload: "true" that use a Secret whose key was replaced.
   */
  readonly manageWorkloads?: boolean;
  /**
   * With leader election: how long this replica may still write (LeaderElector.writeBudgetMs). The
   * controller then keeps its caches warm but reconciles only after lead() is called.
   */
  readonly writeBudgetMs?: () => number;
  /** A watch silent for this long is relisted (ResilientInformer's staleness watchdog). */
  readonly staleAfterMs?: number;
  /**
   * New and rotated keys reach an issuer's verifier Secret at most this long after they are written,
   * so a rotation storm makes one verifier write per interval, not one per key. Keys that stop being
   * valid (revoked, deleted, refused) are removed at once. Default 1 s.
   */
  readonly verifierBatchMs?: number;
  /**
   * The largest verifier document written, in bytes of JSON (default MAX_VERIFIER_BYTES, what a
   * Secret holds). Beyond it removals are still written and new keys held back (VerifierTooLarge).
   */
  readonly verifierMaxBytes?: number;
}

/** controller-runtime's defaults are 20/30. keyrotor makes 4 requests per new key and 3 per rotation:
 * 20 new keys a second need 80 requests a second (see bench/RESULTS.md). */
export const DEFAULT_QPS = 100;
export const DEFAULT_BURST = 200;

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;
/** What an ApiKey says besides its status: a watch event that changes none of it changed the status only. */
const specFingerprint = (apiKey: ApiKey) =>
  JSON.stringify([
    apiKey.metadata.uid,
    apiKey.metadata.generation,
    apiKey.metadata.annotations ?? {},
    apiKey.metadata.labels ?? {},
    apiKey.metadata.deletionTimestamp !== undefined,
  ]);
/** The same client options without the leader's write fence. */
function unfenced(options: ClientOptions): ClientOptions {
  const { writeBudgetMs: _fence, ...rest } = options;
  return rest;
}
const DEFAULT_VERIFIER_BATCH_MS = 1_000;
const CONFLICT_POLL_MS = 2_000;
const MAX_CONFLICT_POLL_MS = 30_000;

/**
 * The imperative shell around decide(): informers feed keys into the work queue; each reconcile
 * reads the ApiKey and its Secret from the caches, asks decide() for a plan, and applies it
 * (an audit intent line, the Secret, its events and audit lines, then the status).
 */
export class Controller {
  readonly #options: ControllerOptions;
  readonly #logger: Logger;
  readonly #writer: KubeWriter;
  readonly #events: EventRecorder;
  readonly #apiKeys: ResilientInformer<ApiKey>[] = [];
  readonly #secrets: ResilientInformer<SecretObject & { metadata?: { name?: string } }>[] = [];
  readonly #issuers: ResilientInformer<ApiKeyIssuer>[] = [];
  #namespaces: ResilientInformer<V1Namespace> | undefined;
  /** The readers controller, unless manageReaders is false. */
  #readers: ReadersController | undefined;
  /** The workloads controller, unless manageWorkloads is false. */
  #workloads: WorkloadsController | undefined;
  readonly #writtenApiKeys = new RecentWrites<ApiKey>();
  /** Per ApiKey in SecretConflict: how often its Secret was asked about since (#conflictPoll). */
  readonly #conflictPolls = new Map<string, number>();
  /** Per ApiKey: what its last watch event showed besides the status (specFingerprint). */
  readonly #seenApiKeys = new Map<string, string>();
  readonly #writtenIssuers = new RecentWrites<ApiKeyIssuer>();
  readonly #writtenSecrets = new RecentWrites<SecretObject>();
  readonly #queue: WorkQueue;
  readonly #verifiers: IssuerVerifiers;
  readonly #now: () => Date;
  readonly #decideConfig: Omit<DecideConfig, 'sealKey'>;
  /** Loaded in start(), before the first reconcile. */
  #sealKey: Uint8Array | undefined;
  readonly #clientOptions: ClientOptions;
  readonly #restarter: WorkloadRestarter;
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
    this.#decideConfig =
      minRotationIntervalMs === undefined ? decideConfig : { ...decideConfig, minRotationIntervalMs };
    this.#leading = options.writeBudgetMs === undefined;
    const limiter = new TokenBucket(options.qps ?? DEFAULT_QPS, options.burst ?? DEFAULT_BURST);
    this.metrics = new OperatorMetrics({
      apiKeys: () => this.#apiKeys.flatMap((informer) => informer.list()),
      queueDepth: () => this.#queue.length,
      ready: () => this.ready,
      leading: () => this.#working && (options.writeBudgetMs?.() ?? 1) > 0,
    });
    const onRequest = (method: string) => {
      this.metrics.apiRequests.inc({ method });
      options.onRequest?.(method);
    };
    const clientOptions: ClientOptions = {
      limiter,
      onRequest,
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
    this.#writer = new KubeWriter(options.kc, clientOptions);
    this.#events = new EventRecorder(options.kc, options.logger, {
      ...clientOptions,
      instance: options.instance,
      now: this.#now,
    });
    this.#restarter = new WorkloadRestarter(options.kc, this.#events, options.logger, {
      ...clientOptions,
      debounceMs: options.restartDebounceMs ?? 5_000,
      now: this.#now,
    });
    this.#queue = new WorkQueue({
      concurrency: options.concurrency,
      handler: (key) => this.#timedReconcile(key),
      retryAfterOf: (error) => (error instanceof KubeError ? error.retryAfterMs : undefined),
      onStart: (_key, waitedMs) => {
        this.metrics.queueWait.observe(waitedMs / 1000);
      },
      onFailure: (key, error, retryInMs) => {
        this.metrics.queueRetries.inc();
        this.#logger.warn(
          { error: errorFields(error), apiKey: key, retryInMs },
          'reconcile failed; will retry',
        );
      },
    });
    this.#verifiers = new IssuerVerifiers({
      caches: {
        apiKeys: () => this.#apiKeys.flatMap((informer) => informer.list()),
        apiKey: (namespace, name) => this.#cachedApiKey(namespace, name),
        issuer: (namespace, name) => this.#cachedIssuer(namespace, name),
        secret: (namespace, name) => this.#cachedSecret(namespace, name),
        namespaceLabels: (namespace) => this.#namespaceLabels(namespace),
        sealKey: () => this.#requireSealKey(),
        wroteSecret: (namespace, name, written) => {
          if (written === undefined) this.#writtenSecrets.drop(keyOf(namespace, name));
          else this.#writtenSecrets.record(keyOf(namespace, name), cachedSecretView(written));
        },
        wroteIssuer: (namespace, name, written) => {
          this.#writtenIssuers.record(keyOf(namespace, name), written);
        },
      },
      writer: this.#writer,
      events: this.#events,
      metrics: this.metrics,
      logger: options.logger,
      now: this.#now,
      batchMs: options.verifierBatchMs ?? DEFAULT_VERIFIER_BATCH_MS,
      ...(options.verifierMaxBytes === undefined ? {} : { maxBytes: options.verifierMaxBytes }),
    });
    this.#makeInformers();
  }

  #makeInformers(): void {
    const { kc, logger, namespaces } = this.#options;
    const clientOptions = this.#clientOptions;
    const custom = makeClient(kc, CustomObjectsApi, clientOptions);
    const core = makeClient(kc, CoreV1Api, clientOptions);
    const scopes = namespaces.length === 0 ? [undefined] : namespaces;
    const watchOptions = {
      onTransition: (kind: 'restart' | 'relist' | 'stale') => {
        this.metrics.informerTransitions.inc({ kind });
      },
      ...(this.#options.staleAfterMs === undefined ? {} : { staleAfterMs: this.#options.staleAfterMs }),
    };
    for (const namespace of scopes) {
      const where = namespace === undefined ? '' : `/namespaces/${namespace}`;
      this.#apiKeys.push(
        new ResilientInformer<ApiKey>({
          name: `apikeys${namespace ? ` in ${namespace}` : ''}`,
          kc,
          logger,
          ...watchOptions,
          path: `/apis/${GROUP}/${VERSION}${where}/${PLURAL}`,
          list: async () =>
            (namespace === undefined
              ? await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
              : await custom.listNamespacedCustomObject({
                  group: GROUP,
                  version: VERSION,
                  namespace,
                  plural: PLURAL,
                })) as KubernetesListObject<ApiKey>,
          onChange: (apiKey, change) => {
            // A deleted ApiKey must not be served from what keyrotor last wrote of it.
            const key = keyOf(apiKey.metadata.namespace, apiKey.metadata.name);
            if (change === 'delete') this.#writtenApiKeys.deleted(key, apiKey);
            // A change of status only is keyrotor's own write (no one else may write it), and no reason
            // to look again: a reconcile that failed and recorded its failure would otherwise run again
            // at once, past its backoff (a hot loop). As controller-runtime's GenerationChangedPredicate,
            // but metadata changes (the rotate annotation, deletion) count too.
            const seen = specFingerprint(apiKey);
            if (change === 'delete') this.#seenApiKeys.delete(key);
            else if (change === 'update' && this.#seenApiKeys.get(key) === seen) return;
            else this.#seenApiKeys.set(key, seen);
            this.#queue.add(key);
            this.#readers?.apiKeyChanged(apiKey.metadata.namespace, apiKey.metadata.name);
            this.#workloads?.apiKeyChanged(apiKey.metadata.namespace, apiKey.metadata.name);
          },
        }),
      );
      if (this.#secrets.length === 0) {
        registerSecretCacheMetrics(this.metrics.registry, () =>
          this.#secrets.flatMap((informer) => informer.list()),
        );
      }
      this.#secrets.push(
        new ResilientInformer<SecretObject>({
          name: `secrets${namespace ? ` in ${namespace}` : ''}`,
          kc,
          logger,
          ...watchOptions,
          path: `/api/v1${where}/secrets`,
          // Anyone may label a Secret: only keyrotor's two types are watched, and of those only what
          // keyrotor reads is kept (kube/secret-cache.ts), so a tenant's Secrets cost keyrotor no memory.
          labelSelector: MANAGED_SECRET_SELECTOR,
          fieldSelectors: SECRET_FIELD_SELECTORS,
          transform: cachedSecretView,
          pageSize: SECRET_LIST_PAGE_SIZE,
          list: async (page) => {
            const query = { labelSelector: MANAGED_SECRET_SELECTOR, ...page };
            return namespace === undefined
              ? await core.listSecretForAllNamespaces(query)
              : await core.listNamespacedSecret({ namespace, ...query });
          },
          onChange: (secret, change) => {
            const secretNamespace = secret.metadata?.namespace;
            // Deleted (or relabelled out of the watch): no longer served from what keyrotor wrote.
            if (change === 'delete' && secretNamespace && secret.metadata?.name)
              this.#writtenSecrets.deleted(keyOf(secretNamespace, secret.metadata.name), secret);
            this.#enqueueOwner(secret);
            if (!secretNamespace) return;
            // A verifier Secret's issuer, by its label and by its owner (an edit may have changed the label).
            const issuers = new Set<string>();
            const label = secret.metadata?.labels?.[LABEL_ISSUER];
            if (label !== undefined) issuers.add(label);
            for (const owner of secret.metadata?.ownerReferences ?? []) {
              if (
                owner.controller === true &&
                owner.kind === ISSUER_KIND &&
                owner.apiVersion.startsWith(`${GROUP}/`)
              )
                issuers.add(owner.name);
            }
            for (const issuer of issuers) this.#verifiers.verifierSecretChanged(secretNamespace, issuer);
          },
        }),
      );
      this.#issuers.push(
        new ResilientInformer<ApiKeyIssuer>({
          name: `apikeyissuers${namespace ? ` in ${namespace}` : ''}`,
          kc,
          logger,
          ...watchOptions,
          path: `/apis/${GROUP}/${VERSION}${where}/${ISSUER_PLURAL}`,
          list: async () =>
            (namespace === undefined
              ? await custom.listClusterCustomObject({
                  group: GROUP,
                  version: VERSION,
                  plural: ISSUER_PLURAL,
                })
              : await custom.listNamespacedCustomObject({
                  group: GROUP,
                  version: VERSION,
                  namespace,
                  plural: ISSUER_PLURAL,
                })) as KubernetesListObject<ApiKeyIssuer>,
          onChange: (issuer, change) => {
            if (change === 'delete')
              this.#writtenIssuers.deleted(keyOf(issuer.metadata.namespace, issuer.metadata.name), issuer);
            this.#onIssuerChange(issuer);
          },
        }),
      );
    }
    // Issuers select consumer namespaces by label, so their labels are watched: cluster-wide, since
    // an issuer may admit namespaces keyrotor does not otherwise watch. Every key obeys its namespace's
    // environment label (reconcile/environment.ts): a change of that label is looked at by all of them.
    const environments = new Map<string, string | undefined>();
    this.#namespaces = new ResilientInformer<V1Namespace>({
      name: 'namespaces',
      kc,
      logger,
      ...watchOptions,
      path: '/api/v1/namespaces',
      list: () => core.listNamespace(),
      onChange: (namespace, change) => {
        const name = namespace.metadata?.name ?? '';
        const environment = namespace.metadata?.labels?.[LABEL_ENVIRONMENT];
        const relabelled = !environments.has(name) || environments.get(name) !== environment;
        if (change === 'delete') environments.delete(name);
        else environments.set(name, environment);
        for (const apiKey of this.#apiKeysIn(name)) {
          if (relabelled || apiKey.spec.issuerRef !== undefined)
            this.#queue.add(keyOf(apiKey.metadata.namespace, apiKey.metadata.name));
        }
        this.#readers?.namespaceChanged(name);
      },
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
    if (this.#options.manageReaders !== false) {
      this.#readers = new ReadersController({
        ...concern,
        caches: {
          apiKeysIn: (namespace) =>
            this.#apiKeysIn(namespace).map(
              (apiKey) => this.#cachedApiKey(namespace, apiKey.metadata.name) ?? apiKey,
            ),
          apiKey: (namespace, name) => this.#cachedApiKey(namespace, name),
          secret: (namespace, name) => this.#cachedSecret(namespace, name),
          namespaceLabels: (namespace) => this.#namespaceLabels(namespace),
        },
      });
    }
    if (this.#options.manageWorkloads !== false) {
      this.#workloads = new WorkloadsController({
        ...concern,
        caches: {
          apiKeys: () => this.#apiKeys.flatMap((informer) => informer.list()),
          apiKeysIn: (namespace) => this.#apiKeysIn(namespace),
          apiKey: (namespace, name) => this.#cachedApiKey(namespace, name),
        },
      });
    }
  }

  /** An issuer's spec changed, or it was deleted: every key that references it is looked at again. */
  #onIssuerChange(issuer: ApiKeyIssuer): void {
    const { namespace, name } = issuer.metadata;
    const cached = this.#informerFor(this.#issuers, namespace)?.get(namespace, name);
    if (!this.#verifiers.issuerChanged(issuer, cached)) return;
    for (const informer of this.#apiKeys) {
      for (const apiKey of informer.list()) {
        if (referencesIssuer(apiKey, issuer))
          this.#queue.add(keyOf(apiKey.metadata.namespace, apiKey.metadata.name));
      }
    }
  }

  #apiKeysIn(namespace: string): readonly ApiKey[] {
    return this.#informerFor(this.#apiKeys, namespace)?.list(namespace) ?? [];
  }

  /** An object keyrotor labelled as an ApiKey's: look at that ApiKey. */
  #enqueueOwner(object: { metadata?: { namespace?: string; labels?: Record<string, string> } }): void {
    const owner = object.metadata?.labels?.[LABEL_API_KEY];
    if (owner !== undefined && object.metadata?.namespace)
      this.#queue.add(keyOf(object.metadata.namespace, owner));
  }

  #informers(): InformerLifecycle[] {
    return [
      ...this.#apiKeys,
      ...this.#secrets,
      ...(this.#readers?.informers() ?? []),
      ...this.#issuers,
      ...(this.#namespaces ? [this.#namespaces] : []),
    ];
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
    this.#queue.start();
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
    await this.#queue.shutdown();
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
    await this.#queue.idle();
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
    this.#verifiers.resync(this.#issuers.flatMap((informer) => informer.list()));
    const namespaces = new Set<string>();
    for (const informer of this.#apiKeys) {
      for (const apiKey of informer.list()) {
        this.#queue.add(keyOf(apiKey.metadata.namespace, apiKey.metadata.name));
        namespaces.add(apiKey.metadata.namespace);
      }
    }
    this.#readers?.resync(namespaces);
    this.#workloads?.resync(this.#apiKeys.flatMap((informer) => informer.list()));
  }

  #requireSealKey(): Uint8Array {
    if (this.#sealKey === undefined)
      throw new Error('the seal key is loaded in start(), before any reconcile');
    return this.#sealKey;
  }

  /** The informer of `namespace`: the only one when watching all namespaces. */
  #informerFor<T>(informers: readonly T[], namespace: string): T | undefined {
    return informers.length === 1 ? informers[0] : informers[this.#options.namespaces.indexOf(namespace)];
  }

  #cachedApiKey(namespace: string, name: string): ApiKey | undefined {
    const cached = this.#informerFor(this.#apiKeys, namespace)?.get(namespace, name);
    return this.#writtenApiKeys.read(keyOf(namespace, name), cached);
  }

  #cachedIssuer(namespace: string, name: string): ApiKeyIssuer | undefined {
    const cached = this.#informerFor(this.#issuers, namespace)?.get(namespace, name);
    return this.#writtenIssuers.read(keyOf(namespace, name), cached);
  }

  /** A namespace's labels, which issuers select consumers by. */
  #namespaceLabels(namespace: string): Readonly<Record<string, string>> {
    return this.#namespaces?.get('', namespace)?.metadata?.labels ?? {};
  }

  #cachedSecret(namespace: string, name: string): SecretObject | undefined {
    const cached = this.#informerFor(this.#secrets, namespace)?.get(namespace, name);
    return this.#writtenSecrets.read(keyOf(namespace, name), cached);
  }

  async #timedReconcile(key: string): Promise<{ requeueAfterMs?: number }> {
    const stopTimer = this.metrics.reconcileDuration.startTimer();
    try {
      const result = await this.#reconcile(key);
      this.metrics.reconciles.inc({ result: 'success' });
      return result;
    } catch (error) {
      this.metrics.reconciles.inc({ result: 'error' });
      throw error;
    } finally {
      stopTimer();
    }
  }

  async #reconcile(key: string): Promise<{ requeueAfterMs?: number }> {
    const [namespace = '', name = ''] = key.split('/');
    const apiKey = this.#cachedApiKey(namespace, name);
    if (apiKey === undefined) {
      this.#queue.forget(key);
      this.#conflictPolls.delete(key);
      await this.#verifiers.follow(key, undefined);
      return {};
    }
    const secretName = secretNameOf(apiKey);
    // Secrets keyrotor does not label are not cached: ask the API server before creating one.
    const cached =
      this.#cachedSecret(namespace, secretName) ?? (await this.#writer.readSecret(namespace, secretName));
    // Older than the status says: a replay, or a Secret watch that lags; only the API server can tell.
    const secret =
      cached !== undefined && lagsStatus(apiKey, cached)
        ? await this.#writer.readSecret(namespace, secretName)
        : cached;
    const ref = apiKey.spec.issuerRef;
    const issuer =
      ref === undefined
        ? {}
        : {
            issuer: {
              issuer: this.#cachedIssuer(ref.namespace, ref.name),
              namespaceLabels: this.#namespaceLabels(namespace),
            },
          };
    const config = { ...this.#decideConfig, sealKey: this.#requireSealKey() };
    const namespaceLabels = this.#namespaceLabels(namespace);
    const plan = decide({ apiKey, secret, now: this.#now(), config, namespaceLabels, ...issuer });
    // A key that must stop working leaves the verifier before its status says so.
    await this.#verifiers.follow(key, apiKey, { removalsOnly: true });
    // The mount guard is in place before a key of an ApiKey with readers exists in its Secret.
    const guarded = plan.secretWrite !== undefined && readersOf(apiKey).length > 0;
    if (guarded) await this.#readers?.ensureGuard(apiKey);
    const applied = await this.#apply(apiKey, plan).catch((error: unknown) => {
      if (guarded) this.#readers?.secretWriteFailed(apiKey);
      throw error;
    });
    // Also while deleting: what was granted goes at once, not when the garbage collector gets to it.
    this.#readers?.apiKeyChanged(namespace, name);
    await this.#verifiers.follow(key, this.#cachedApiKey(namespace, name), {
      statusChanged: applied.statusChanged,
    });
    const requeueAfterMs = Math.min(
      applied.requeueAfterMs ?? MAX_REQUEUE_MS,
      MAX_REQUEUE_MS,
      this.#conflictPoll(key, applied),
    );
    return requeueAfterMs === MAX_REQUEUE_MS && applied.requeueAfterMs === undefined
      ? {}
      : { requeueAfterMs };
  }

  /**
   * When the ApiKey's Secret is someone else's (SecretConflict), how soon to look at it again. keyrotor
   * does not watch Secrets it does not own (it would have to read every Secret), so the Secret being
   * deleted or annotated for adoption is seen by asking again: after 2 s, doubling up to 30 s.
   */
  #conflictPoll(key: string, plan: Plan): number {
    if (findCondition(plan.status.conditions, READY)?.reason !== Reason.SecretConflict) {
      this.#conflictPolls.delete(key);
      return MAX_REQUEUE_MS;
    }
    const polls = this.#conflictPolls.get(key) ?? 0;
    this.#conflictPolls.set(key, polls + 1);
    return Math.min(CONFLICT_POLL_MS * 2 ** polls, MAX_CONFLICT_POLL_MS);
  }

  async #apply(apiKey: ApiKey, plan: Plan): Promise<Plan> {
    const { namespace, name } = apiKey.metadata;
    const write = plan.secretWrite;
    if (write !== undefined) {
      const secretKey = keyOf(namespace, write.manifest.metadata.name);
      this.#audit(apiKey, plan, 'intent');
      try {
        if (write.kind === 'recreate') {
          await this.#writer
            .deleteSecret(namespace, write.manifest.metadata.name, write.uid)
            .catch((error: unknown) => {
              if (!isNotFound(error)) throw error;
            });
        }
        let manifest = write.manifest;
        if (write.kind === 'apply' && write.strip !== undefined && write.strip.length > 0) {
          // Fields of keyrotor's that someone else added: apply would keep them (another manager's).
          const stripped = await this.#writer.stripSecret(
            namespace,
            manifest.metadata.name,
            write.strip,
            manifest.metadata.resourceVersion,
          );
          const resourceVersion = stripped.metadata?.resourceVersion;
          manifest = {
            ...manifest,
            metadata: { ...manifest.metadata, ...(resourceVersion ? { resourceVersion } : {}) },
          };
        }
        // As the cache holds it: rendered parts by digest, nobody else's data (kube/secret-cache.ts).
        this.#writtenSecrets.record(secretKey, cachedSecretView(await this.#writer.applySecret(manifest)));
      } catch (error) {
        // A conflict means the Secret changed since the decision: decide again on fresh state.
        this.#audit(apiKey, plan, 'failed');
        if (isConflict(error)) {
          this.#writtenSecrets.drop(secretKey);
          throw error;
        }
        // No longer the leader: nothing to report, the next leader decides again.
        if (error instanceof KubeError && error.reason === NOT_LEADER) throw error;
        // Anything else is reported (status, a Warning) and retried with backoff; the old key stays.
        this.metrics.secretWriteFailures.inc();
        await this.#record(apiKey, recordFailure(apiKey, plan, this.#now(), failureSummary(error)));
        throw error;
      }
      // On record as soon as the Secret holds it, whatever becomes of the status write: a status write
      // that fails (throttled, refused) must not lose the step's audit line or its Events.
      this.#audit(apiKey, plan, 'done');
      for (const event of plan.events) this.#events.record(apiKey, event);
      if (plan.replaced !== undefined) this.metrics.rotations.inc({ reason: plan.replaced });
      if (plan.replaced !== undefined) this.#requestRestarts(apiKey, plan);
    }
    await this.#record(apiKey, write === undefined ? plan : { ...plan, audit: [], events: [] });
    if (write !== undefined || plan.statusChanged) {
      this.#logger.debug(
        {
          apiKey: keyOf(namespace, name),
          keyId: plan.status.keyId,
          secretWrite: write?.kind,
          statusChanged: plan.statusChanged,
        },
        'reconciled',
      );
    }
    return plan;
  }

  /**
   * A key was replaced (rotated, revoked) in the Secret: the workloads named as targets restart, and
   * those of the namespace annotated keyrotor.dev/reload that use the Secret (one restart each).
   */
  #requestRestarts(apiKey: ApiKey, plan: Plan): void {
    const reload = this.#workloads?.reloadTargetsFor(apiKey) ?? [];
    if (plan.restart.length > 0 || reload.length > 0) this.#restarter.request(apiKey, plan.restart, reload);
  }

  /** Writes the plan's status (if it changed), then its events and audit lines. */
  async #record(apiKey: ApiKey, plan: Plan): Promise<void> {
    const { namespace, name } = apiKey.metadata;
    if (plan.statusChanged) {
      this.#writtenApiKeys.record(
        keyOf(namespace, name),
        await this.#writer.applyStatus(apiKey, plan.status),
      );
    }
    for (const event of plan.events) this.#events.record(apiKey, event);
    this.#audit(apiKey, plan);
  }

  #audit(apiKey: ApiKey, plan: Pick<Plan, 'audit'>, phase?: 'intent' | 'done' | 'failed'): void {
    const { namespace, name } = apiKey.metadata;
    for (const entry of plan.audit) {
      writeAudit(this.#logger, {
        ...entry,
        namespace,
        apiKey: name,
        secret: secretNameOf(apiKey),
        ...(phase === undefined ? {} : { phase }),
      });
    }
  }
}
