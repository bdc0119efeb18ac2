import { AppsV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';

import { ROLLOUT_GROUP, ROLLOUT_PLURAL, ROLLOUT_VERSION, WORKLOADS_FIELD_MANAGER } from '../api/names.ts';
import type { ApiKey, Condition } from '../api/types.ts';
import type { KindAvailability } from '../reconcile/restart-targets.ts';
import type { RestartKind } from '../reconcile/spec.ts';
import { makeClient, type ClientOptions } from './client.ts';
import { applyApiKeyCondition } from './condition-writes.ts';
import { call, isForbidden, isNotFound } from './errors.ts';

/** The writes of the workloads controller, and its probes of which workload kinds it may watch. */
export class WorkloadsWriter {
  readonly #apps: AppsV1Api;
  readonly #custom: CustomObjectsApi;

  constructor(kc: KubeConfig, options: ClientOptions = {}) {
    this.#apps = makeClient(kc, AppsV1Api, options);
    this.#custom = makeClient(kc, CustomObjectsApi, options);
  }

  /**
   * The ApiKey's RestartTargetsReady condition, applied under the workloads controller's own field
   * manager (the ApiKey controller's status writes leave it be); undefined removes it (an apply that
   * no longer holds it), for an ApiKey that names no targets any more.
   */
  async applyRestartTargetsCondition(apiKey: ApiKey, condition: Condition | undefined): Promise<void> {
    await applyApiKeyCondition(
      this.#custom,
      WORKLOADS_FIELD_MANAGER,
      apiKey,
      'RestartTargetsReady',
      condition,
    );
  }

  /**
   * Whether workloads of a kind can be listed where keyrotor watches (`namespace`, or everywhere): a
   * 404 means the kind's CRD is not installed (Argo Rollouts), a 403 that keyrotor's RBAC does not grant
   * it (features.workloadRestarts off). Anything else is thrown (asked again later).
   */
  async availability(kind: RestartKind, namespace: string | undefined): Promise<KindAvailability> {
    const page = { limit: 1 };
    const rollouts = { group: ROLLOUT_GROUP, version: ROLLOUT_VERSION, plural: ROLLOUT_PLURAL, ...page };
    const list = (): Promise<unknown> => {
      if (kind === 'Rollout')
        return namespace === undefined
          ? this.#custom.listClusterCustomObject({ ...rollouts })
          : this.#custom.listNamespacedCustomObject({ ...rollouts, namespace });
      if (kind === 'Deployment')
        return namespace === undefined
          ? this.#apps.listDeploymentForAllNamespaces(page)
          : this.#apps.listNamespacedDeployment({ namespace, ...page });
      if (kind === 'StatefulSet')
        return namespace === undefined
          ? this.#apps.listStatefulSetForAllNamespaces(page)
          : this.#apps.listNamespacedStatefulSet({ namespace, ...page });
      return namespace === undefined
        ? this.#apps.listDaemonSetForAllNamespaces(page)
        : this.#apps.listNamespacedDaemonSet({ namespace, ...page });
    };
    try {
      await call(`list ${kind}s`, list);
      return 'available';
    } catch (error) {
      if (isNotFound(error)) return 'not-installed';
      if (isForbidden(error)) return 'forbidden';
      throw error;
    }
  }
}
