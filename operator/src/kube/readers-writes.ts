import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';

import {
  API_VERSION,
  FIELD_MANAGER,
  GROUP,
  LABEL_MANAGED_BY,
  LABEL_MOUNT_GUARD,
  MANAGED_BY_VALUE,
  MOUNT_GUARD_ENFORCED,
  READERS_FIELD_MANAGER,
  READERS_KIND,
  READERS_OBJECT_NAME,
  READERS_PLURAL,
  VERSION,
} from '../api/names.ts';
import type { ApiKey, ApiKeyReaders, Condition, ReadersEntry } from '../api/types.ts';
import type { ReaderRbac } from '../reconcile/readers.ts';
import { makeClient, type ClientOptions } from './client.ts';
import { applyApiKeyCondition, serverSideApply } from './condition-writes.ts';
import { call, isNotFound } from './errors.ts';

const mergePatch = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const ignoreMissing = (error: unknown) => {
  if (!isNotFound(error)) throw error;
};

/** Pods are listed in pages of this many, so a namespace with many never arrives in one response. */
const POD_PAGE = 500;

/** The writes of the readers controller: reader RBAC, the mount guard's parameters and its reports. */
export class ReadersWriter {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #rbac: RbacAuthorizationV1Api;

  constructor(kc: KubeConfig, options: ClientOptions = {}) {
    this.#core = makeClient(kc, CoreV1Api, options);
    this.#custom = makeClient(kc, CustomObjectsApi, options);
    this.#rbac = makeClient(kc, RbacAuthorizationV1Api, options);
  }

  /** Server-side apply of the Role and RoleBinding that let an ApiKey's readers read its Secret. */
  async applyReaderRbac(rbac: ReaderRbac): Promise<void> {
    const { name, namespace } = rbac.role.metadata;
    await call(`apply Role ${namespace}/${name}`, () =>
      this.#rbac.patchNamespacedRole(
        { name, namespace, body: rbac.role, fieldManager: FIELD_MANAGER, force: true },
        serverSideApply(),
      ),
    );
    await call(`apply RoleBinding ${namespace}/${name}`, () =>
      this.#rbac.patchNamespacedRoleBinding(
        { name, namespace, body: rbac.binding, fieldManager: FIELD_MANAGER, force: true },
        serverSideApply(),
      ),
    );
  }

  /** Deletes the reader Role and RoleBinding; already gone is fine. */
  async deleteReaderRbac(namespace: string, name: string): Promise<void> {
    await call(`delete RoleBinding ${namespace}/${name}`, () =>
      this.#rbac.deleteNamespacedRoleBinding({ namespace, name }),
    ).catch(ignoreMissing);
    await call(`delete Role ${namespace}/${name}`, () =>
      this.#rbac.deleteNamespacedRole({ namespace, name }),
    ).catch(ignoreMissing);
  }

  /**
   * Writes the namespace's ApiKeyReaders object with exactly these entries: created when `current`
   * is undefined, else replaced whole at `current`'s resourceVersion (a replace, not an apply, so an
   * entry someone else added is removed too; a conflict retries on fresh state).
   */
  async writeGuard(
    namespace: string,
    entries: readonly ReadersEntry[],
    current: ApiKeyReaders | undefined,
  ): Promise<ApiKeyReaders> {
    const body = {
      apiVersion: API_VERSION,
      kind: READERS_KIND,
      // Only what keyrotor sets: labels or annotations someone else added go with the replace.
      metadata: {
        name: READERS_OBJECT_NAME,
        namespace,
        labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE },
        ...(current?.metadata.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
      },
      spec: { secretCount: entries.length, secrets: [...entries] },
    };
    const what = `${current === undefined ? 'create' : 'replace'} ${READERS_KIND} ${namespace}/${READERS_OBJECT_NAME}`;
    const target = { group: GROUP, version: VERSION, namespace, plural: READERS_PLURAL };
    const written: unknown = await call(what, () =>
      current === undefined
        ? this.#custom.createNamespacedCustomObject({ ...target, body, fieldManager: FIELD_MANAGER })
        : this.#custom.replaceNamespacedCustomObject({
            ...target,
            name: READERS_OBJECT_NAME,
            body,
            fieldManager: FIELD_MANAGER,
          }),
    );
    return written as ApiKeyReaders;
  }

  async deleteGuard(namespace: string): Promise<void> {
    await call(`delete ${READERS_KIND} ${namespace}/${READERS_OBJECT_NAME}`, () =>
      this.#custom.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: READERS_PLURAL,
        name: READERS_OBJECT_NAME,
      }),
    ).catch(ignoreMissing);
  }

  /** Sets (or, with enforced false, removes) the namespace label that makes missing parameters deny. */
  async labelNamespace(namespace: string, enforced: boolean): Promise<void> {
    const body = { metadata: { labels: { [LABEL_MOUNT_GUARD]: enforced ? MOUNT_GUARD_ENFORCED : null } } };
    await call(`label Namespace ${namespace} ${LABEL_MOUNT_GUARD}`, () =>
      this.#core.patchNamespace({ name: namespace, body, fieldManager: FIELD_MANAGER }, mergePatch()),
    );
  }

  /** The namespace's Pods, page by page. */
  async listPods(namespace: string): Promise<V1Pod[]> {
    const pods: V1Pod[] = [];
    let next: string | undefined;
    do {
      const page = await call(`list Pods in ${namespace}`, () =>
        this.#core.listNamespacedPod({ namespace, limit: POD_PAGE, ...(next ? { _continue: next } : {}) }),
      );
      pods.push(...page.items);
      next = page.metadata?._continue || undefined;
    } while (next !== undefined);
    return pods;
  }

  /**
   * The ApiKey's MountGuard condition, applied under the readers controller's own field manager: the
   * ApiKey controller's status writes own the other conditions and leave this one be.
   */
  async applyMountGuardCondition(apiKey: ApiKey, condition: Condition): Promise<void> {
    await applyApiKeyCondition(this.#custom, READERS_FIELD_MANAGER, apiKey, 'MountGuard', condition);
  }
}
