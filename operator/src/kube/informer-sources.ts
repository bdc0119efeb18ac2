// Where an informer lists and watches a custom resource: one definition for every kind keyrotor
// watches through CustomObjectsApi (ApiKeys, ApiKeyIssuers, ApiKeyReaders, Argo Rollouts), cluster-wide
// or in one namespace, instead of a copy per kind.
import type { CustomObjectsApi, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';

import type { InformerOptions, ListPage } from './informer.ts';

export interface CustomResource {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

/** The informer's name in logs and metrics: "apikeys", or "apikeys in team-a". */
export const informerName = (kind: string, namespace: string | undefined) =>
  namespace === undefined ? kind : `${kind} in ${namespace}`;

/**
 * The watch path and the list of `resource`, in `namespace` or in all namespaces: in pages when `paged`
 * (the informer's page size), else in one response.
 */
export function customObjectSource<T extends KubernetesObject>(
  custom: CustomObjectsApi,
  resource: CustomResource,
  namespace: string | undefined,
  { paged = false }: { readonly paged?: boolean } = {},
): Pick<InformerOptions<T>, 'path' | 'list'> {
  const { group, version, plural } = resource;
  const where = namespace === undefined ? '' : `/namespaces/${namespace}`;
  return {
    path: `/apis/${group}/${version}${where}/${plural}`,
    list: async (page: ListPage) => {
      const query = { group, version, plural, ...(paged ? page : {}) };
      return (
        namespace === undefined
          ? await custom.listClusterCustomObject(query)
          : await custom.listNamespacedCustomObject({ ...query, namespace })
      ) as KubernetesListObject<T>;
    },
  };
}
