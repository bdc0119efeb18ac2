import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DATA_KEY_ID, DATA_PREVIOUS_KEY_ID } from '../../operator/src/api/names.ts';
import { createApiKey, requestRotation, secretValue, waitForAllReady } from '../support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
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

const watchRestarts = async () =>
  (await operator?.metric('keyrotor_informer_transitions_total{kind="restart"}')) ?? 0;

describe('the API server restarts under load', () => {
  it('killed mid-rotation, etcd compacted while it is down: watches recover, every key rotates exactly once', async () => {
    const names = Array.from({ length: KEYS }, (_, index) => `key-${index}`);
    const spec = { expiresAfter: '30d', rotation: { gracePeriod: '1h' } };
    await Promise.all(names.map((name) => createApiKey(cluster.kc, NAMESPACE, name, spec)));
    operator = await startOperatorProcess(cluster.controlPlane.kubeconfig, ['--namespaces', NAMESPACE]);
    const issued = await waitForAllReady(cluster.kc, NAMESPACE, { count: KEYS });
    const firstKeyId = new Map(issued.map((apiKey) => [apiKey.metadata.name, apiKey.status?.keyId]));

    const restartsBefore = await watchRestarts();
    await Promise.all(names.map((name) => requestRotation(cluster.kc, NAMESPACE, name, 'after-restart')));
    let compactedAt = 0;
    let rotatedBeforeKill = 0;
    await cluster.controlPlane.restartApiServer(async () => {
      // While it is down: how many of the rotations the operator got done before the kill.
      rotatedBeforeKill = (await operator?.metric('keyrotor_rotations_total{reason="Manual"}')) ?? 0;
      compactedAt = await compactEtcd();
    });
    // The kill came with rotations still to do.
    expect(rotatedBeforeKill).toBeLessThan(KEYS);
    // Keys created after the restart prove that the watches work again.
    await Promise.all(['late-a', 'late-b'].map((name) => createApiKey(cluster.kc, NAMESPACE, name, spec)));

    const converged = await waitForAllReady(cluster.kc, NAMESPACE, {
      count: KEYS + 2,
      request: 'after-restart',
      rotated: names,
    });
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
    const restarts = (await watchRestarts()) - restartsBefore;
    console.error(
      `[faults] apiserver restart: ${rotatedBeforeKill}/${KEYS} rotated before the kill; etcd compacted at revision ${compactedAt}; watch restarts ${restarts}`,
    );
    // The watches broke with the API server and were restarted (not merely never noticed).
    expect(restarts).toBeGreaterThan(0);
  });
});
