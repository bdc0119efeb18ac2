import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ANNOTATION_ROTATE,
  DATA_KEY_ID,
  DATA_PREVIOUS_KEY_ID,
  GROUP,
  PLURAL,
  VERSION,
} from '../../operator/src/api/names.ts';
import type { ApiKey } from '../../operator/src/api/types.ts';
import { createApiKey, secretValue } from '../support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { waitFor } from '../support/wait.ts';
import { startFaultControlPlane, type FaultControlPlane } from './control-plane.ts';

const NAMESPACE = 'apiserver-restart';
const KEYS = 30;

let cluster: FaultControlPlane;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  cluster = await startFaultControlPlane();
  await cluster.createNamespace(NAMESPACE);
});

afterAll(async () => {
  await operator?.kill();
  await cluster.controlPlane.stop();
});

async function listApiKeys(): Promise<ApiKey[]> {
  const list = (await cluster.kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: NAMESPACE,
    plural: PLURAL,
  })) as { items: ApiKey[] };
  return list.items;
}

/** etcd's v3 JSON gateway: its current revision, then a physical compaction up to it. */
async function compactEtcd(): Promise<number> {
  const post = async (route: string, body: unknown) => {
    const response = await fetch(`${cluster.controlPlane.etcdUrl}/v3/kv/${route}`, {
      method: 'POST',
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`etcd ${route}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as { header: { revision: string } };
  };
  const { header } = await post('range', { key: Buffer.from('/').toString('base64'), limit: 1 });
  await post('compaction', { revision: header.revision, physical: true });
  return Number(header.revision);
}

async function transitions(kind: string): Promise<number> {
  const text = await (await fetch(`${operator?.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((candidate) => candidate.startsWith(`keyrotor_informer_transitions_total{kind="${kind}"}`));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

describe('the API server restarts under load', () => {
  it('killed mid-rotation, etcd compacted while it is down: watches recover, every key rotates exactly once', async () => {
    const names = Array.from({ length: KEYS }, (_, index) => `key-${index}`);
    const spec = { expiresAfter: '30d', rotation: { gracePeriod: '1h' } };
    await Promise.all(names.map((name) => createApiKey(cluster.kc, NAMESPACE, name, spec)));
    operator = await startOperatorProcess(cluster.controlPlane.kubeconfig, ['--namespaces', NAMESPACE]);
    const issued = await waitFor(
      async () => {
        const all = await listApiKeys();
        return all.length === KEYS && all.every((apiKey) => apiKey.status?.keyId !== undefined)
          ? all
          : undefined;
      },
      { description: 'the first keys', timeoutMs: 60_000 },
    );
    const firstKeyId = new Map(issued.map((apiKey) => [apiKey.metadata.name, apiKey.status?.keyId]));

    const custom = cluster.kc.makeApiClient(CustomObjectsApi);
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    await Promise.all(
      names.map((name) =>
        custom.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: VERSION,
            namespace: NAMESPACE,
            plural: PLURAL,
            name,
            body: { metadata: { annotations: { [ANNOTATION_ROTATE]: 'after-restart' } } },
          },
          merge,
        ),
      ),
    );
    let compactedAt = 0;
    await cluster.controlPlane.restartApiServer(async () => {
      compactedAt = await compactEtcd();
    });
    // Keys created after the restart prove that the watches work again.
    await Promise.all(['late-a', 'late-b'].map((name) => createApiKey(cluster.kc, NAMESPACE, name, spec)));

    const converged = await waitFor(
      async () => {
        const all = await listApiKeys();
        const done = all.every((apiKey) => {
          const ready = apiKey.status?.conditions?.find((condition) => condition.type === 'Ready');
          return (
            ready?.status === 'True' &&
            apiKey.status?.observedGeneration === apiKey.metadata.generation &&
            (!names.includes(apiKey.metadata.name) || apiKey.status?.lastRotateRequest === 'after-restart')
          );
        });
        return all.length === KEYS + 2 && done ? all : undefined;
      },
      { description: 'every key to converge after the restart', timeoutMs: 90_000, intervalMs: 200 },
    );
    const secrets = await cluster.kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: NAMESPACE });
    for (const apiKey of converged) {
      const { name } = apiKey.metadata;
      const secret = secrets.items.find(
        (candidate) => candidate.metadata?.name === apiKey.status?.secretName,
      );
      expect(secretValue(secret, DATA_KEY_ID), `${name}: Secret and status agree`).toBe(apiKey.status?.keyId);
      if (!names.includes(name)) continue;
      expect(apiKey.status?.rotationCount, `${name}: rotated once`).toBe(1);
      expect(
        secretValue(secret, DATA_PREVIOUS_KEY_ID),
        `${name}: the first key kept for its grace period`,
      ).toBe(firstKeyId.get(name));
    }
    console.error(
      `[faults] apiserver restart: etcd compacted at revision ${compactedAt}; watch restarts ${await transitions('restart')}`,
    );
  });
});
