import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {
  CoreV1Api,
  EventsV1Api,
  FlowcontrolApiserverV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DATA_KEY_ID } from '../../operator/src/api/names.ts';
import type { ApiKey } from '../../operator/src/api/types.ts';
import { tokenKubeConfig } from '../support/kube.ts';
import {
  createApiKey,
  listApiKeys,
  requestRotation,
  secretValue,
  waitForAllReady,
} from '../support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { waitFor } from '../support/wait.ts';
import { startFaultControlPlane, type FaultControlPlane } from './control-plane.ts';

// The operator runs as a ServiceAccount (the admin identity is exempt from priority and fairness).
const NAMESPACE = 'throttled';
const KEYS = 40;

let cluster: FaultControlPlane;
let operator: OperatorProcess | undefined;
let kubeconfig: string;

beforeAll(async () => {
  cluster = await startFaultControlPlane();
  await cluster.createNamespace(NAMESPACE);
  const core = cluster.kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({
    namespace: NAMESPACE,
    body: { metadata: { name: 'operator' } },
  });
  await cluster.kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: 'throttled-operator' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: NAMESPACE }],
    },
  });
  const token = await core.createNamespacedServiceAccountToken({
    namespace: NAMESPACE,
    name: 'operator',
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  kubeconfig = path.join(os.tmpdir(), `keyrotor-throttled-${process.pid}.kubeconfig`);
  await writeFile(kubeconfig, tokenKubeConfig(cluster.kc, token.status?.token ?? '').exportConfig());
});

afterAll(async () => {
  await operator?.kill();
  await cluster.controlPlane.stop();
});

/** A counter of the operator's, 0 until first incremented (prom-client omits unused label sets). */
async function counter(series: string): Promise<number> {
  return (await operator?.metric(series)) ?? 0;
}

describe('an API server that pushes back', () => {
  it('429 from priority and fairness: every key issued once, and every Issued event delivered', async () => {
    // One seat for the operator's requests, and no queue: whatever does not fit is refused with 429.
    const flowControl = cluster.kc.makeApiClient(FlowcontrolApiserverV1Api);
    await flowControl.createPriorityLevelConfiguration({
      body: {
        metadata: { name: 'keyrotor-tight' },
        spec: {
          type: 'Limited',
          limited: { nominalConcurrencyShares: 1, lendablePercent: 0, limitResponse: { type: 'Reject' } },
        },
      },
    });
    await flowControl.createFlowSchema({
      body: {
        metadata: { name: 'keyrotor-tight' },
        spec: {
          priorityLevelConfiguration: { name: 'keyrotor-tight' },
          matchingPrecedence: 100,
          distinguisherMethod: { type: 'ByUser' },
          rules: [
            {
              subjects: [
                { kind: 'ServiceAccount', serviceAccount: { name: 'operator', namespace: NAMESPACE } },
              ],
              resourceRules: [
                { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true },
              ],
            },
          ],
        },
      },
    });
    operator = await startOperatorProcess(kubeconfig, ['--namespaces', NAMESPACE, '--concurrency', '16']);
    // Bursts of new keys until the priority level has refused some of the operator's requests.
    const names: string[] = [];
    let apiKeys: ApiKey[] = [];
    for (let burst = 0; burst < 5; burst += 1) {
      if (burst > 0 && (await counter('keyrotor_api_responses_total{code="429"}')) > 0) break;
      const batch = Array.from({ length: KEYS }, (_, index) => `key-${burst}-${index}`);
      await Promise.all(batch.map((name) => createApiKey(cluster.kc, NAMESPACE, name)));
      names.push(...batch);
      apiKeys = await waitForAllReady(cluster.kc, NAMESPACE, { count: names.length });
    }

    // Events go out after the reconcile; throttled ones are sent again after Retry-After.
    await waitFor(
      async () => {
        const events = await cluster.kc
          .makeApiClient(EventsV1Api)
          .listNamespacedEvent({ namespace: NAMESPACE });
        const issued = new Set(
          events.items.filter((event) => event.reason === 'Issued').map((event) => event.regarding?.name),
        );
        return names.every((name) => issued.has(name)) ? true : undefined;
      },
      { description: 'an Issued event for every key', timeoutMs: 60_000, intervalMs: 500 },
    );
    const throttled = await counter('keyrotor_api_responses_total{code="429"}');
    console.error(
      `[faults] 429: ${throttled} answers throttled; ${await counter('keyrotor_workqueue_retries_total')} retries`,
    );
    expect(throttled).toBeGreaterThan(0);
    for (const apiKey of apiKeys) expect(apiKey.status?.rotationCount).toBe(0);
    const secrets = await cluster.kc.makeApiClient(CoreV1Api).listNamespacedSecret({
      namespace: NAMESPACE,
      labelSelector: 'app.kubernetes.io/managed-by=keyrotor',
    });
    expect(secrets.items).toHaveLength(names.length);
    // The next test needs an API server that answers.
    await flowControl.deleteFlowSchema({ name: 'keyrotor-tight' });
  });

  it('409 from writes racing another writer: decided again on fresh state, each rotation exactly once', async () => {
    const core = cluster.kc.makeApiClient(CoreV1Api);
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const before = await counter('keyrotor_api_responses_total{code="409"}');
    let round = 0;
    // Rounds of rotations while another client keeps annotating the Secrets (allowed: keyrotor owns
    // only its own fields), until the Secret writes have met conflicts.
    while ((await counter('keyrotor_api_responses_total{code="409"}')) === before && round < 10) {
      round += 1;
      const request = `round-${round}`;
      const previous = new Map(
        (await listApiKeys(cluster.kc, NAMESPACE)).map((apiKey) => [apiKey.metadata.name, apiKey]),
      );
      const race = { on: true };
      const racer = (async () => {
        for (let touch = 0; race.on; touch += 1) {
          await Promise.all(
            [...previous.keys()].map((name) =>
              core.patchNamespacedSecret(
                {
                  namespace: NAMESPACE,
                  name: previous.get(name)?.status?.secretName ?? name,
                  body: { metadata: { annotations: { 'racing.example/touch': String(touch) } } },
                },
                merge,
              ),
            ),
          );
        }
      })();
      await Promise.all(
        [...previous.keys()].map((name) => requestRotation(cluster.kc, NAMESPACE, name, request)),
      );
      try {
        const apiKeys = await waitForAllReady(cluster.kc, NAMESPACE, { count: previous.size, request });
        const secrets = await core.listNamespacedSecret({ namespace: NAMESPACE });
        for (const apiKey of apiKeys) {
          const { name } = apiKey.metadata;
          expect(apiKey.status?.rotationCount, `${name} in ${request}`).toBe(
            (previous.get(name)?.status?.rotationCount ?? 0) + 1,
          );
          const secret = secrets.items.find(
            (candidate) => candidate.metadata?.name === apiKey.status?.secretName,
          );
          expect(secretValue(secret, DATA_KEY_ID)).toBe(apiKey.status?.keyId);
        }
      } finally {
        race.on = false;
        await racer;
      }
    }
    const conflicts = (await counter('keyrotor_api_responses_total{code="409"}')) - before;
    console.error(`[faults] 409: ${conflicts} conflicts over ${round} rounds of rotating every key`);
    expect(conflicts).toBeGreaterThan(0);
  });
});
