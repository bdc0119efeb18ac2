import {
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type KubernetesListObject,
  type V1Role,
  type V1RoleBinding,
} from '@kubernetes/client-node';

import {
  GROUP,
  LABEL_API_KEY,
  LABEL_MANAGED_BY,
  LABEL_MOUNT_GUARD,
  MANAGED_BY_VALUE,
  MANAGED_SECRET_SELECTOR,
  MOUNT_GUARD_ENFORCED,
  READERS_OBJECT_NAME,
  READERS_PLURAL,
  VERSION,
} from '../api/names.ts';
import type { ApiKey, ApiKeyReaders } from '../api/types.ts';
import { makeClient } from '../kube/client.ts';
import { ResilientInformer } from '../kube/informer.ts';
import { customObjectSource, informerName } from '../kube/informer-sources.ts';
import { ReadersWriter } from '../kube/readers-writes.ts';
import { findCondition, setCondition } from '../reconcile/conditions.ts';
import {
  MOUNT_GUARD,
  desiredGuardEntries,
  describeConsumers,
  mountGuardCondition,
  sameEntries,
  unguardedCondition,
  unlistedConsumers,
  type PodLike,
} from '../reconcile/mount-guard.ts';
import {
  desiredReaderRbac,
  holdsLiveKey,
  rbacDiffers,
  readerRbacName,
  readersOf,
} from '../reconcile/readers.ts';
import { Reason } from '../reconcile/reasons.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { secretNameOf } from '../reconcile/spec.ts';
import { concernQueue, type ConcernOptions } from './concern.ts';
import type { WorkQueue } from './queue.ts';
import { RecentWrites } from './recent-writes.ts';

type RbacObject = V1Role & V1RoleBinding;

/** What the readers controller reads from the ApiKey controller's caches (through its recent writes). */
export interface ReadersCaches {
  readonly apiKeysIn: (namespace: string) => readonly ApiKey[];
  readonly apiKey: (namespace: string, name: string) => ApiKey | undefined;
  readonly secret: (namespace: string, name: string) => SecretLike | undefined;
  readonly namespaceLabels: (namespace: string) => Readonly<Record<string, string>>;
}

export interface ReadersControllerOptions extends ConcernOptions {
  readonly caches: ReadersCaches;
}

/** Queue keys: "namespace/name" for an ApiKey's grant, "#guard/namespace" for a namespace's mount guard. */
const GUARD_KEY_PREFIX = '#guard/';
const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

/**
 * The readers controller: for each ApiKey that lists readers, the Role and RoleBinding that let them
 * read its Secret; for each namespace, the mount guard (its ApiKeyReaders object, which the
 * keyrotor-readers admission policy reads, and the namespace label that makes that policy refuse
 * every Pod while the object is missing); and the report of Pods that use a guarded Secret without
 * being its readers. It watches what it writes and repairs any edit at once.
 */
export class ReadersController {
  readonly #options: ReadersControllerOptions;
  readonly #writer: ReadersWriter;
  readonly #queue: WorkQueue;
  readonly #roles: ResilientInformer<RbacObject>[] = [];
  readonly #bindings: ResilientInformer<RbacObject>[] = [];
  readonly #guards: ResilientInformer<ApiKeyReaders>[] = [];
  readonly #writtenGuards = new RecentWrites<ApiKeyReaders>();
  /** Per namespace: the names of its ApiKeys with readers or a MountGuard condition (#track). */
  readonly #concerned = new Map<string, Set<string>>();
  /** Per namespace: the guard reconcile in flight, so a direct ensureGuard() and the queue never race. */
  readonly #guardRuns = new Map<string, Promise<void>>();
  /** Per ApiKey: what its Secret's consumers were last checked for (uid, key, readers). */
  readonly #checked = new Map<string, string>();
  /**
   * Per namespace: the Secrets the ApiKey controller is about to write a key into (name -> the ApiKey's
   * uid), guarded before they exist. Only the ApiKey controller adds to it, after its ownership check.
   */
  readonly #pending = new Map<string, Map<string, string>>();

  constructor(options: ReadersControllerOptions) {
    this.#options = options;
    this.#writer = new ReadersWriter(options.kc, options.clientOptions);
    this.#queue = concernQueue(options, 'readers', 'readers reconcile failed', (key) => this.#reconcile(key));
    this.#makeInformers();
  }

  #makeInformers(): void {
    const { kc, logger, namespaces, clientOptions, watchOptions } = this.#options;
    const rbac = makeClient(kc, RbacAuthorizationV1Api, clientOptions);
    const custom = makeClient(kc, CustomObjectsApi, clientOptions);
    for (const namespace of namespaces.length === 0 ? [undefined] : namespaces) {
      const where = namespace === undefined ? '' : `/namespaces/${namespace}`;
      const rbacInformer = (kind: 'roles' | 'rolebindings') =>
        new ResilientInformer<RbacObject>({
          name: informerName(kind, namespace),
          kc,
          logger,
          ...watchOptions,
          path: `/apis/rbac.authorization.k8s.io/v1${where}/${kind}`,
          labelSelector: MANAGED_SECRET_SELECTOR,
          list: async () => {
            const labelSelector = MANAGED_SECRET_SELECTOR;
            const list =
              kind === 'roles'
                ? namespace === undefined
                  ? await rbac.listRoleForAllNamespaces({ labelSelector })
                  : await rbac.listNamespacedRole({ namespace, labelSelector })
                : namespace === undefined
                  ? await rbac.listRoleBindingForAllNamespaces({ labelSelector })
                  : await rbac.listNamespacedRoleBinding({ namespace, labelSelector });
            return list as KubernetesListObject<RbacObject>;
          },
          onChange: (object) => {
            const owner = object.metadata?.labels?.[LABEL_API_KEY];
            if (owner !== undefined && object.metadata?.namespace)
              this.#queue.add(keyOf(object.metadata.namespace, owner));
          },
        });
      this.#roles.push(rbacInformer('roles'));
      this.#bindings.push(rbacInformer('rolebindings'));
      // Every ApiKeyReaders object, not only keyrotor's: one created by someone else is repaired too.
      this.#guards.push(
        new ResilientInformer<ApiKeyReaders>({
          name: informerName('apikeyreaders', namespace),
          kc,
          logger,
          ...watchOptions,
          ...customObjectSource<ApiKeyReaders>(
            custom,
            { group: GROUP, version: VERSION, plural: READERS_PLURAL },
            namespace,
          ),
          onChange: (object, change) => {
            const { namespace: objectNamespace, name } = object.metadata;
            if (change === 'delete') this.#writtenGuards.deleted(keyOf(objectNamespace, name), object);
            this.#queue.add(GUARD_KEY_PREFIX + objectNamespace);
          },
        }),
      );
    }
  }

  informers(): ResilientInformer<RbacObject | ApiKeyReaders>[] {
    return [...this.#roles, ...this.#bindings, ...this.#guards] as ResilientInformer<
      RbacObject | ApiKeyReaders
    >[];
  }

  start(): void {
    this.#queue.start();
  }

  async shutdown(): Promise<void> {
    await this.#queue.shutdown();
  }

  async idle(): Promise<void> {
    await this.#queue.idle();
  }

  /** An ApiKey changed (or was reconciled): its grant and its namespace's guard are looked at again. */
  apiKeyChanged(namespace: string, name: string): void {
    this.#track(namespace, name);
    this.#queue.add(keyOf(namespace, name));
    this.#queue.add(GUARD_KEY_PREFIX + namespace);
  }

  /**
   * Keeps `#concerned` up to date for one ApiKey: those with readers, or with a MountGuard condition to
   * take back. A guard reconcile reads only them, so its cost follows the keys with readers, not every
   * key of the namespace (a guard reconcile per ApiKey change over all of them was quadratic: 46% of
   * the operator's CPU converging 4,000 keys without readers).
   */
  #track(namespace: string, name: string): void {
    const apiKey = this.#options.caches.apiKey(namespace, name);
    const concerned =
      apiKey !== undefined &&
      (readersOf(apiKey).length > 0 || findCondition(apiKey.status?.conditions, MOUNT_GUARD) !== undefined);
    const names = this.#concerned.get(namespace);
    if (concerned) {
      if (names === undefined) this.#concerned.set(namespace, new Set([name]));
      else names.add(name);
    } else if (names?.delete(name) === true && names.size === 0) {
      this.#concerned.delete(namespace);
    }
  }

  /** The namespace's ApiKeys that have readers or a MountGuard condition, as the caches have them now. */
  #concernedIn(namespace: string): ApiKey[] {
    const { caches } = this.#options;
    const found: ApiKey[] = [];
    for (const name of this.#concerned.get(namespace) ?? []) {
      const apiKey = caches.apiKey(namespace, name);
      if (apiKey !== undefined) found.push(apiKey);
    }
    return found;
  }

  /** A namespace changed (its labels): its guard label is repaired if someone removed it. */
  namespaceChanged(namespace: string): void {
    const labelled = this.#options.caches.namespaceLabels(namespace)[LABEL_MOUNT_GUARD] !== undefined;
    if (labelled || this.#options.caches.apiKeysIn(namespace).length > 0)
      this.#queue.add(GUARD_KEY_PREFIX + namespace);
  }

  /** The periodic resync: every guard again, and the consumers of every guarded Secret checked again. */
  resync(namespaces: Iterable<string>): void {
    this.#checked.clear();
    for (const namespace of namespaces) {
      // Rebuilt from the caches: what the watch told of may have missed a change (a relist).
      this.#concerned.delete(namespace);
      for (const apiKey of this.#options.caches.apiKeysIn(namespace))
        this.#track(namespace, apiKey.metadata.name);
      this.#queue.add(GUARD_KEY_PREFIX + namespace);
    }
  }

  /**
   * Guards the ApiKey's Secret now: the ApiKey controller awaits this before it writes a key into the
   * Secret of an ApiKey with readers (having decided the Secret is, or may become, that ApiKey's), so
   * the guard is in place before the key exists.
   */
  async ensureGuard(apiKey: ApiKey): Promise<void> {
    const { namespace } = apiKey.metadata;
    this.#track(namespace, apiKey.metadata.name);
    const pending = this.#pending.get(namespace) ?? new Map<string, string>();
    pending.set(secretNameOf(apiKey), apiKey.metadata.uid);
    this.#pending.set(namespace, pending);
    await this.#guard(namespace, { checkConsumers: false });
  }

  /** The Secret write ensureGuard() preceded failed: the Secret is not about to be the ApiKey's after all. */
  secretWriteFailed(apiKey: ApiKey): void {
    const { namespace } = apiKey.metadata;
    const pending = this.#pending.get(namespace);
    if (pending?.get(secretNameOf(apiKey)) !== apiKey.metadata.uid) return;
    pending.delete(secretNameOf(apiKey));
    this.#queue.add(GUARD_KEY_PREFIX + namespace);
  }

  async #reconcile(key: string): Promise<void> {
    if (key.startsWith(GUARD_KEY_PREFIX)) {
      await this.#guard(key.slice(GUARD_KEY_PREFIX.length), { checkConsumers: true });
      return;
    }
    const slash = key.indexOf('/');
    await this.#grant(key.slice(0, slash), key.slice(slash + 1));
  }

  /**
   * The Role and RoleBinding that let the ApiKey's readers read its Secret: created, repaired or
   * removed. Grants follow ownership, never spec.secretName alone (holdsLiveKey).
   */
  async #grant(namespace: string, apiKeyName: string): Promise<void> {
    const { caches } = this.#options;
    const apiKey = caches.apiKey(namespace, apiKeyName);
    const name = readerRbacName({ metadata: { name: apiKeyName } });
    const role = this.#informerFor(this.#roles, namespace)?.get(namespace, name);
    const binding = this.#informerFor(this.#bindings, namespace)?.get(namespace, name);
    const desired =
      apiKey === undefined
        ? undefined
        : desiredReaderRbac(apiKey, holdsLiveKey(apiKey, caches.secret(namespace, secretNameOf(apiKey))));
    if (desired === undefined) {
      if (role !== undefined || binding !== undefined) await this.#writer.deleteReaderRbac(namespace, name);
    } else if (rbacDiffers(desired, role, binding)) {
      await this.#writer.applyReaderRbac(desired);
    }
  }

  /** One guard reconcile per namespace at a time: a second caller waits for the first, then runs. */
  async #guard(namespace: string, options: { checkConsumers: boolean }): Promise<void> {
    const previous = this.#guardRuns.get(namespace) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.#syncGuard(namespace, options));
    this.#guardRuns.set(namespace, run);
    try {
      await run;
    } finally {
      if (this.#guardRuns.get(namespace) === run) this.#guardRuns.delete(namespace);
    }
  }

  /**
   * The namespace's ApiKeyReaders object holds exactly the entries its ApiKeys ask for, and the
   * namespace carries the guard label while it does. The object is written before the label is set
   * and after it is removed, so there is never a moment when the label is set and the object missing
   * because of keyrotor.
   */
  async #syncGuard(namespace: string, { checkConsumers }: { checkConsumers: boolean }): Promise<void> {
    const { caches } = this.#options;
    // Only those with readers (or a MountGuard condition) can add an entry or need a report.
    const apiKeys = this.#concernedIn(namespace);
    const pending = this.#pendingIn(namespace, apiKeys);
    const entries = desiredGuardEntries(
      apiKeys,
      (apiKey) => caches.secret(namespace, secretNameOf(apiKey)),
      (apiKey) => pending.get(secretNameOf(apiKey)) === apiKey.metadata.uid,
    );
    const key = keyOf(namespace, READERS_OBJECT_NAME);
    const current = this.#writtenGuards.read(
      key,
      this.#informerFor(this.#guards, namespace)?.get(namespace, READERS_OBJECT_NAME),
    );
    const labelled = caches.namespaceLabels(namespace)[LABEL_MOUNT_GUARD] === MOUNT_GUARD_ENFORCED;
    if (entries.length === 0) {
      if (caches.namespaceLabels(namespace)[LABEL_MOUNT_GUARD] !== undefined)
        await this.#writer.labelNamespace(namespace, false);
      if (current !== undefined) {
        await this.#writer.deleteGuard(namespace);
        this.#writtenGuards.drop(key);
      }
    } else {
      if (current === undefined || !sameEntries(entries, current.spec?.secrets) || !ours(current)) {
        this.#writtenGuards.record(key, await this.#writer.writeGuard(namespace, entries, current));
      }
      if (!labelled) await this.#writer.labelNamespace(namespace, true);
    }
    if (checkConsumers) await this.#checkConsumers(namespace, apiKeys);
  }

  /**
   * Pods that already used a Secret before its key existed (or while the guard was off), as a
   * ServiceAccount the ApiKey does not list: the policy only sees new Pods, so keyrotor looks for
   * them when a key is issued or rotated, when the readers change, and at every resync, and reports
   * them on the ApiKey (condition MountGuard, a Warning event naming them).
   */
  async #checkConsumers(namespace: string, apiKeys: readonly ApiKey[]): Promise<void> {
    const { caches } = this.#options;
    const due = apiKeys.filter((apiKey) => {
      const reported = findCondition(apiKey.status?.conditions, MOUNT_GUARD);
      // Readers removed: a MountGuard condition left from before says so once.
      if (readersOf(apiKey).length === 0)
        return reported !== undefined && reported.reason !== Reason.NoReaders;
      if (!holdsLiveKey(apiKey, caches.secret(namespace, secretNameOf(apiKey)))) return false;
      return this.#checked.get(keyOf(namespace, apiKey.metadata.name)) !== fingerprint(apiKey);
    });
    if (due.length === 0) return;
    const pods: PodLike[] = due.some((apiKey) => readersOf(apiKey).length > 0)
      ? await this.#writer.listPods(namespace)
      : [];
    for (const apiKey of due) {
      const readers = readersOf(apiKey);
      const secretName = secretNameOf(apiKey);
      const consumers = readers.length === 0 ? [] : unlistedConsumers(pods, secretName, readers);
      const update =
        readers.length === 0 ? unguardedCondition(secretName) : mountGuardCondition(secretName, consumers);
      const existing = findCondition(apiKey.status?.conditions, MOUNT_GUARD);
      if (
        existing?.status !== update.status ||
        existing.reason !== update.reason ||
        existing.message !== update.message
      ) {
        const [condition] = setCondition(
          existing ? [existing] : [],
          update,
          this.#options.now(),
          apiKey.metadata.generation,
        );
        if (condition !== undefined) await this.#writer.applyMountGuardCondition(apiKey, condition);
      }
      if (consumers.length > 0) {
        this.#options.events.record(apiKey, {
          type: 'Warning',
          reason: Reason.UnlistedConsumers,
          action: 'Guard',
          note: `${describeConsumers(consumers)} use Secret ${secretName} but are not in spec.readers.serviceAccounts`,
        });
      }
      this.#checked.set(keyOf(namespace, apiKey.metadata.name), fingerprint(apiKey));
    }
  }

  /** The namespace's pending Secrets, without those whose ApiKey is gone or now owns them (cached). */
  #pendingIn(namespace: string, apiKeys: readonly ApiKey[]): ReadonlyMap<string, string> {
    const pending = this.#pending.get(namespace);
    if (pending === undefined) return new Map();
    const uids = new Set(apiKeys.map((apiKey) => apiKey.metadata.uid));
    for (const [secretName, uid] of pending) {
      const owned = this.#options.caches.secret(namespace, secretName) !== undefined;
      if (!uids.has(uid) || owned) pending.delete(secretName);
    }
    if (pending.size === 0) this.#pending.delete(namespace);
    return pending;
  }

  #informerFor<T>(informers: readonly T[], namespace: string): T | undefined {
    const { namespaces } = this.#options;
    return informers.length === 1 ? informers[0] : informers[namespaces.indexOf(namespace)];
  }
}

/** Created by keyrotor (its label): an object someone else created under the name is replaced. */
function ours(object: ApiKeyReaders): boolean {
  return object.metadata.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_VALUE;
}

/** What a consumer check depends on: the ApiKey, its current key and its readers. */
function fingerprint(apiKey: ApiKey): string {
  return JSON.stringify([
    apiKey.metadata.uid,
    apiKey.status?.keyId ?? '',
    readersOf(apiKey),
    secretNameOf(apiKey),
  ]);
}
