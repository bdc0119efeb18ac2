// Workloads for the tests of restart targets and reload annotations (they never run: no kubelet).
import { AppsV1Api, type KubeConfig, type V1PodSpec } from '@kubernetes/client-node';

import { ANNOTATION_RESTARTED_AT } from '../../operator/src/api/names.ts';
import type { ApiKey, Condition } from '../../operator/src/api/types.ts';
import { readApiKey } from './operator.ts';
import { waitFor } from './wait.ts';

/** Waits until the ApiKey's RestartTargetsReady condition matches. */
export async function waitForTargets(
  kc: KubeConfig,
  namespace: string,
  name: string,
  status: 'True' | 'False',
  message?: RegExp,
  poke?: () => void,
): Promise<Condition> {
  return waitFor(
    async () => {
      poke?.();
      const apiKey: ApiKey = await readApiKey(kc, namespace, name);
      const condition = apiKey.status?.conditions?.find((c) => c.type === 'RestartTargetsReady');
      return condition?.status === status && (message === undefined || message.test(condition.message))
        ? condition
        : undefined;
    },
    {
      description: `RestartTargetsReady=${status} on ${namespace}/${name}${message ? ` matching ${String(message)}` : ''}`,
    },
  );
}

/** The keyrotor.dev/restartedAt annotation of each Deployment, StatefulSet and DaemonSet of the namespace. */
export async function restartedAt(
  kc: KubeConfig,
  namespace: string,
): Promise<Record<string, string | undefined>> {
  const apps = kc.makeApiClient(AppsV1Api);
  const [deployments, statefulSets, daemonSets] = await Promise.all([
    apps.listNamespacedDeployment({ namespace }),
    apps.listNamespacedStatefulSet({ namespace }),
    apps.listNamespacedDaemonSet({ namespace }),
  ]);
  const found: Record<string, string | undefined> = {};
  for (const [kind, items] of [
    ['Deployment', deployments.items],
    ['StatefulSet', statefulSets.items],
    ['DaemonSet', daemonSets.items],
  ] as const)
    for (const item of items)
      found[`${kind}/${item.metadata?.name ?? ''}`] =
        item.spec?.template.metadata?.annotations?.[ANNOTATION_RESTARTED_AT];
  return found;
}

export const podSpec = (secret: string, use: 'volume' | 'projected' | 'env' | 'envFrom'): V1PodSpec => {
  const container = { name: 'app', image: 'app:1' };
  if (use === 'volume')
    return { containers: [container], volumes: [{ name: 'key', secret: { secretName: secret } }] };
  if (use === 'projected')
    return {
      containers: [container],
      volumes: [{ name: 'key', projected: { sources: [{ secret: { name: secret } }] } }],
    };
  if (use === 'env')
    return {
      containers: [
        {
          ...container,
          env: [{ name: 'API_KEY', valueFrom: { secretKeyRef: { name: secret, key: 'api-key' } } }],
        },
      ],
    };
  return { containers: [{ ...container, envFrom: [{ secretRef: { name: secret } }] }] };
};

/** A Deployment, StatefulSet or DaemonSet (they never run: there is no kubelet). */
export async function createWorkload(
  kc: KubeConfig,
  namespace: string,
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet',
  name: string,
  spec: V1PodSpec,
  annotations: Record<string, string> = {},
): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const metadata = { name, annotations };
  const common = {
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec },
  };
  if (kind === 'Deployment')
    await apps.createNamespacedDeployment({ namespace, body: { metadata, spec: common } });
  else if (kind === 'StatefulSet')
    await apps.createNamespacedStatefulSet({
      namespace,
      body: { metadata, spec: { ...common, serviceName: name } },
    });
  else await apps.createNamespacedDaemonSet({ namespace, body: { metadata, spec: common } });
}
