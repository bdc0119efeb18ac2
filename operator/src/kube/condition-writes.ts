import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';

import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../api/names.ts';
import type { ApiKey, Condition } from '../api/types.ts';
import { call } from './errors.ts';

export const serverSideApply = () => setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/**
 * One ApiKey condition, applied to its status under a controller's own field manager, so the ApiKey
 * controller's status writes and this one never take each other's fields. Undefined removes the
 * condition: an apply that no longer holds it.
 */
export async function applyApiKeyCondition(
  custom: CustomObjectsApi,
  fieldManager: string,
  apiKey: ApiKey,
  type: string,
  condition: Condition | undefined,
): Promise<void> {
  const { name, namespace } = apiKey.metadata;
  const body = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace },
    status: { conditions: condition === undefined ? [] : [condition] },
  };
  await call(`apply ${type} condition of ${KIND} ${namespace}/${name}`, () =>
    custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body, fieldManager, force: true },
      serverSideApply(),
    ),
  );
}
