import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DATA_API_KEY, DATA_KEY_ID, DATA_PREVIOUS_KEY_ID } from '../../operator/src/api/names.ts';
import { keyId } from '../../operator/src/keys/format.ts';
import { readAuditedWrites, replicaWrites } from '../support/audit.ts';
import { createDeployment } from '../support/kube.ts';
import {
  createApiKey,
  listApiKeys,
  readApiKey,
  requestRotation,
  secretValue,
  waitForAllReady,
  waitForReady,
} from '../support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { waitFor } from '../support/wait.ts';
import { startFaultControlPlane, type FaultControlPlane } from './control-plane.ts';

const NAMESPACE = 'crash';
const KEYS = 8;
const CRASHES = 20;
/** Each round's work (rotations and new keys) takes a few hundred ms; a kill lands somewhere in it. */
const KILL_WINDOW_MS = 600;

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

const start = () => startOperatorProcess(cluster.controlPlane.kubeconfig, ['--namespaces', NAMESPACE]);

describe('kill -9 at random points', () => {
  it(`${CRASHES} crashes during creations and rotations: every key Ready, each rotation exactly once, no key lost`, async () => {
    /** Rotation requests each key has seen, and the key id it held after the last round. */
    const requests = new Map<string, number>();
    const held = new Map<string, string>();
    const names = Array.from({ length: KEYS }, (_, index) => `key-${index}`);
    // No grace period: a rotation requested while a previous key is in its grace period waits for it
    // to end (docs/rotation.md), and every round here rotates every key.
    const spec = { expiresAfter: '30d', rotation: { gracePeriod: '0s' } };
    await Promise.all(names.map((name) => createApiKey(cluster.kc, NAMESPACE, name, spec)));
    operator = await start();
    for (const apiKey of await waitForAllReady(cluster.kc, NAMESPACE, { count: KEYS }))
      held.set(apiKey.metadata.name, apiKey.status?.keyId ?? '');
    /** Per round: when the kill came, and how much of the round's work the killed process had done. */
    const kills: { afterMs: number; done: number; total: number }[] = [];

    for (let round = 1; round <= CRASHES; round += 1) {
      const request = `round-${round}`;
      const existing = [...names];
      // The work of this round: a rotation of every key, and two new keys.
      await Promise.all(existing.map((name) => requestRotation(cluster.kc, NAMESPACE, name, request)));
      for (const name of existing) requests.set(name, (requests.get(name) ?? 0) + 1);
      const created = [`new-${round}-a`, `new-${round}-b`];
      await Promise.all(created.map((name) => createApiKey(cluster.kc, NAMESPACE, name, spec)));
      names.push(...created);
      // A random point inside the round's work (fault injection, not a wait for state).
      const killAfter = Math.floor(Math.random() * KILL_WINDOW_MS);
      await new Promise((resolve) => setTimeout(resolve, killAfter));
      await operator.kill();
      // What the dead process got done: this round's rotations handled and new keys issued.
      const atKill = await listApiKeys(cluster.kc, NAMESPACE);
      const done = atKill.filter((apiKey) =>
        existing.includes(apiKey.metadata.name)
          ? apiKey.status?.lastRotateRequest === request
          : apiKey.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
      ).length;
      kills.push({ afterMs: killAfter, done, total: existing.length + created.length });
      operator = await start();

      // The new process finishes the round: each request handled once, each new key issued.
      const apiKeys = await waitForAllReady(cluster.kc, NAMESPACE, {
        count: names.length,
        request,
        rotated: existing,
      });
      const secrets = await cluster.kc
        .makeApiClient(CoreV1Api)
        .listNamespacedSecret({ namespace: NAMESPACE });
      for (const apiKey of apiKeys) {
        const { name } = apiKey.metadata;
        expect(apiKey.status?.rotationCount, `${name} after round ${round}`).toBe(requests.get(name) ?? 0);
        const secret = secrets.items.find(
          (candidate) => candidate.metadata?.name === apiKey.status?.secretName,
        );
        const current = secretValue(secret, DATA_KEY_ID);
        expect(current, `${name}: the Secret holds the key the status names`).toBe(apiKey.status?.keyId);
        expect(keyId(secretValue(secret, DATA_API_KEY) ?? '')).toBe(current);
        // The key it held before this round is the one this round retired: exactly one rotation.
        if (existing.includes(name))
          expect(apiKey.status?.history?.[0]?.keyId, `${name}: retired key`).toBe(held.get(name));
        expect(secretValue(secret, DATA_PREVIOUS_KEY_ID), `${name}: no previous key`).toBeUndefined();
        held.set(name, current ?? '');
      }
    }
    console.error(
      `[faults] kill -9 after (ms): work done at the kill: ${kills.map((kill) => `${kill.afterMs}: ${kill.done}/${kill.total}`).join(', ')}; ${names.length} keys`,
    );
    // Not every kill may land before the work or after it: at least one interrupted a round half done.
    expect(kills.filter((kill) => kill.done > 0 && kill.done < kill.total).length).toBeGreaterThan(0);
  });
});

describe('restart and upgrade', () => {
  it('a new operator process over the same state writes nothing, rotates nothing, restarts no workload', async () => {
    const namespace = 'upgrade';
    await cluster.createNamespace(namespace);
    await createDeployment(cluster.kc, namespace, 'bot');
    const names = Array.from({ length: 10 }, (_, index) => `key-${index}`);
    const spec = { rolloutRestartTargets: [{ kind: 'Deployment' as const, name: 'bot' }] };
    await Promise.all(names.map((name) => createApiKey(cluster.kc, namespace, name, spec)));
    const first = await startOperatorProcess(cluster.controlPlane.kubeconfig, [
      '--namespaces',
      namespace,
      '--instance',
      'v1',
    ]);
    await Promise.all(names.map((name) => waitForReady(cluster.kc, namespace, name)));
    expect(await first.stop()).toBe(0);
    const apps = cluster.kc.makeApiClient(AppsV1Api);
    const deployment = await apps.readNamespacedDeployment({ namespace, name: 'bot' });

    // The "upgrade": another process, other flags, the same cluster state.
    const second = await startOperatorProcess(cluster.controlPlane.kubeconfig, [
      '--namespaces',
      namespace,
      '--instance',
      'v2',
      '--concurrency',
      '8',
    ]);
    try {
      // A pass reconciles every key (the mount guard is the readers controller's, on its own queue).
      const perPass = names.length;
      await waitFor(
        async () =>
          ((await second.metric('keyrotor_reconcile_total{result="success"}')) ?? 0) >= perPass
            ? true
            : undefined,
        {
          description: 'the new process to reconcile every key',
        },
      );
      second.signal('SIGHUP'); // and once more, from a fresh list
      await waitFor(
        async () =>
          ((await second.metric('keyrotor_reconcile_total{result="success"}')) ?? 0) >= 2 * perPass
            ? true
            : undefined,
        {
          description: 'the new process to reconcile every key after a relist',
        },
      );
      const writes = replicaWrites(await readAuditedWrites(cluster.auditLog), 'v2');
      expect(writes.filter((write) => write.namespace === namespace)).toEqual([]);
      const after = await apps.readNamespacedDeployment({ namespace, name: 'bot' });
      expect(after.metadata?.generation).toBe(deployment.metadata?.generation);
      for (const name of names)
        expect((await readApiKey(cluster.kc, namespace, name)).status?.rotationCount).toBe(0);
    } finally {
      await second.kill();
    }
  });
});
