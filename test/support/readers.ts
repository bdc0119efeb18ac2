// The mount guard's parameters as the API server has them: the namespace's ApiKeyReaders object.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';

import { GROUP, READERS_OBJECT_NAME, READERS_PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKeyReaders } from '../../operator/src/api/types.ts';
import { statusCode } from './kube.ts';

/** The namespace's ApiKeyReaders object; undefined when there is none. */
export async function readGuard(kc: KubeConfig, namespace: string): Promise<ApiKeyReaders | undefined> {
  try {
    return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: READERS_PLURAL,
      name: READERS_OBJECT_NAME,
    })) as ApiKeyReaders;
  } catch (error) {
    if (statusCode(error) === 404) return undefined;
    throw error;
  }
}

/** The guard's entries as Secret name -> "apiKey;reader1,reader2"; empty when there is no object. */
export async function guardEntries(kc: KubeConfig, namespace: string): Promise<Record<string, string>> {
  const guard = await readGuard(kc, namespace);
  return Object.fromEntries(
    (guard?.spec?.secrets ?? []).map((entry) => [
      entry.secretName,
      `${entry.apiKey ?? ''};${[...(entry.serviceAccounts ?? [])].sort().join(',')}`,
    ]),
  );
}
