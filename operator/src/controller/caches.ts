// The caches every controller reads: ApiKeys, keyrotor's Secrets and ApiKeyIssuers per watched
// namespace (or one family for all), and every Namespace; each with a read-your-writes overlay
// (recent-writes.ts), so a reconcile never acts on an object older than keyrotor's own last write.
// The controllers are told of changes through the handlers the manager gives; they must only enqueue.
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { GROUP, ISSUER_PLURAL, MANAGED_SECRET_SELECTOR, PLURAL, VERSION } from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer } from '../api/types.ts';
import { makeClient, type ClientOptions } from '../kube/client.ts';
import { ResilientInformer, type Change } from '../kube/informer.ts';
import { customObjectSource, informerName } from '../kube/informer-sources.ts';
import {
  SECRET_FIELD_SELECTORS,
  SECRET_LIST_PAGE_SIZE,
  cachedSecretView,
  registerSecretCacheMetrics,
} from '../kube/secret-cache.ts';
import type { OperatorMetrics } from '../observability/metrics.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import type { ConcernOptions } from './concern.ts';
import { RecentWrites } from './recent-writes.ts';

export type SecretObject = SecretLike & {
  metadata?: SecretLike['metadata'] & { name?: string; namespace?: string };
};
export type InformerLifecycle = Pick<ResilientInformer<ApiKey>, 'start' | 'stop' | 'relist' | 'synced'>;

/** An object's place in the caches and the work queues: namespace/name. */
export const objectRef = (namespace: string, name: string) => `${namespace}/${name}`;

export interface CacheHandlers {
  readonly apiKey: (apiKey: ApiKey, change: Change) => void;
  readonly secret: (secret: SecretObject, change: Change) => void;
  /**
   * `cached` is the issuer as the informer's store holds it once this change is in (the store is updated
   * before its handlers run): the new object, or undefined when it was deleted.
   */
  readonly issuer: (issuer: ApiKeyIssuer, cached: ApiKeyIssuer | undefined) => void;
  readonly namespace: (namespace: V1Namespace, change: Change) => void;
}

export interface CachesOptions {
  readonly kc: KubeConfig;
  readonly logger: Logger;
  /** Namespaces to watch; all when empty. */
  readonly namespaces: readonly string[];
  readonly clientOptions: ClientOptions;
  readonly watchOptions: ConcernOptions['watchOptions'];
  readonly metrics: OperatorMetrics;
}

export class SharedCaches {
  readonly #namespaces: readonly string[];
  readonly #apiKeys: ResilientInformer<ApiKey>[] = [];
  readonly #secrets: ResilientInformer<SecretObject>[] = [];
  readonly #issuers: ResilientInformer<ApiKeyIssuer>[] = [];
  readonly #namespaceInformer: ResilientInformer<V1Namespace>;
  readonly #writtenApiKeys = new RecentWrites<ApiKey>();
  readonly #writtenIssuers = new RecentWrites<ApiKeyIssuer>();
  readonly #writtenSecrets = new RecentWrites<SecretObject>();

  constructor(options: CachesOptions, handlers: CacheHandlers) {
    const { kc, logger, namespaces, clientOptions, watchOptions } = options;
    this.#namespaces = namespaces;
    const custom = makeClient(kc, CustomObjectsApi, clientOptions);
    const core = makeClient(kc, CoreV1Api, clientOptions);
    const common = { kc, logger, ...watchOptions };
    registerSecretCacheMetrics(options.metrics.registry, () =>
      this.#secrets.flatMap((informer) => informer.list()),
    );
    for (const namespace of namespaces.length === 0 ? [undefined] : namespaces) {
      this.#apiKeys.push(
        new ResilientInformer<ApiKey>({
          ...common,
          name: informerName('apikeys', namespace),
          ...customObjectSource<ApiKey>(
            custom,
            { group: GROUP, version: VERSION, plural: PLURAL },
            namespace,
          ),
          onChange: (apiKey, change) => {
            // A deleted ApiKey must not be served from what keyrotor last wrote of it.
            if (change === 'delete')
              this.#writtenApiKeys.deleted(
                objectRef(apiKey.metadata.namespace, apiKey.metadata.name),
                apiKey,
              );
            handlers.apiKey(apiKey, change);
          },
        }),
      );
      this.#secrets.push(
        new ResilientInformer<SecretObject>({
          ...common,
          name: informerName('secrets', namespace),
          path: `/api/v1${namespace === undefined ? '' : `/namespaces/${namespace}`}/secrets`,
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
            // Deleted (or relabelled out of the watch): no longer served from what keyrotor wrote.
            const { namespace: where, name } = secret.metadata ?? {};
            if (change === 'delete' && where && name)
              this.#writtenSecrets.deleted(objectRef(where, name), secret);
            handlers.secret(secret, change);
          },
        }),
      );
      this.#issuers.push(
        new ResilientInformer<ApiKeyIssuer>({
          ...common,
          name: informerName('apikeyissuers', namespace),
          ...customObjectSource<ApiKeyIssuer>(
            custom,
            { group: GROUP, version: VERSION, plural: ISSUER_PLURAL },
            namespace,
          ),
          onChange: (issuer, change) => {
            const { namespace: where, name } = issuer.metadata;
            if (change === 'delete') this.#writtenIssuers.deleted(objectRef(where, name), issuer);
            handlers.issuer(issuer, this.#informerFor(this.#issuers, where)?.get(where, name));
          },
        }),
      );
    }
    // Issuers select consumer namespaces by label, so their labels are watched: cluster-wide, since
    // an issuer may admit namespaces keyrotor does not otherwise watch.
    this.#namespaceInformer = new ResilientInformer<V1Namespace>({
      ...common,
      name: 'namespaces',
      path: '/api/v1/namespaces',
      list: () => core.listNamespace(),
      onChange: (namespace, change) => {
        handlers.namespace(namespace, change);
      },
    });
  }

  informers(): InformerLifecycle[] {
    return [...this.#apiKeys, ...this.#secrets, ...this.#issuers, this.#namespaceInformer];
  }

  /** Every cached ApiKey, as listed and watched (not the overlay: for fan-out, not for decisions). */
  apiKeys(): ApiKey[] {
    return this.#apiKeys.flatMap((informer) => informer.list());
  }

  apiKeysIn(namespace: string): readonly ApiKey[] {
    return this.#informerFor(this.#apiKeys, namespace)?.list(namespace) ?? [];
  }

  issuers(): ApiKeyIssuer[] {
    return this.#issuers.flatMap((informer) => informer.list());
  }

  apiKey(namespace: string, name: string): ApiKey | undefined {
    const cached = this.#informerFor(this.#apiKeys, namespace)?.get(namespace, name);
    return this.#writtenApiKeys.read(objectRef(namespace, name), cached);
  }

  issuer(namespace: string, name: string): ApiKeyIssuer | undefined {
    const cached = this.#informerFor(this.#issuers, namespace)?.get(namespace, name);
    return this.#writtenIssuers.read(objectRef(namespace, name), cached);
  }

  secret(namespace: string, name: string): SecretObject | undefined {
    const cached = this.#informerFor(this.#secrets, namespace)?.get(namespace, name);
    return this.#writtenSecrets.read(objectRef(namespace, name), cached);
  }

  /** A namespace's labels, which issuers select consumers by and the environment rule reads. */
  namespaceLabels(namespace: string): Readonly<Record<string, string>> {
    return this.#namespaceInformer.get('', namespace)?.metadata?.labels ?? {};
  }

  wroteApiKey(namespace: string, name: string, written: ApiKey): void {
    this.#writtenApiKeys.record(objectRef(namespace, name), written);
  }

  wroteIssuer(namespace: string, name: string, written: ApiKeyIssuer): void {
    this.#writtenIssuers.record(objectRef(namespace, name), written);
  }

  /** As the cache holds it: rendered parts by digest, nobody else's data. Undefined: forget it. */
  wroteSecret(namespace: string, name: string, written: SecretObject | undefined): void {
    if (written === undefined) this.#writtenSecrets.drop(objectRef(namespace, name));
    else this.#writtenSecrets.record(objectRef(namespace, name), cachedSecretView(written));
  }

  /** The informer of `namespace`: the only one when watching all namespaces. */
  #informerFor<T>(informers: readonly T[], namespace: string): T | undefined {
    return informers.length === 1 ? informers[0] : informers[this.#namespaces.indexOf(namespace)];
  }
}
