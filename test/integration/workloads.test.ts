// The workloads controller against the real API server: rolloutRestartTargets checked as soon as they
// are named (issue 17 item 5), and restarts asked for from the workload's side (item 6). There is no
// kubelet: a restart shows as the pod-template annotation keyrotor.dev/restartedAt.
import { AppsV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ANNOTATION_RELOAD, ANNOTATION_RESTARTED_AT } from '../../operator/src/api/names.ts';
import { adminKubeConfig, createDeployment, createTestNamespace } from '../support/kube.ts';
import {
  createApiKey,
  eventsFor,
  readApiKey,
  requestRotation,
  startOperator,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { waitFor } from '../support/wait.ts';
import { createWorkload, podSpec, restartedAt, waitForTargets } from '../support/workloads.ts';

const RELOAD = { [ANNOTATION_RELOAD]: 'true' };

describe('workloads', () => {
  const kc = adminKubeConfig();
  const apps = kc.makeApiClient(AppsV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: TestOperator;

  beforeEach(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'workloads'));
    operator = await startOperator(kc, namespace, { restartDebounceMs: 200 });
  });
  afterEach(async () => {
    await operator.stop();
    await removeNamespace();
  });

  const auditLines = (action: string) =>
    operator.logLines
      .map(
        (line) => JSON.parse(line) as { audit?: boolean; action?: string; apiKey?: string; message?: string },
      )
      .filter((line) => line.audit === true && line.action === action);

  it('reports a missing rolloutRestartTarget at once (condition, Warning event, audit line), True once it appears', async () => {
    await createDeployment(kc, namespace, 'web');
    await createApiKey(kc, namespace, 'bot', {
      rolloutRestartTargets: [
        { kind: 'Deployment', name: 'web' },
        { kind: 'StatefulSet', name: 'db' },
      ],
    });
    // Exactly the one missing (Deployment web exists), however the two watches' events interleave.
    const missing = await waitForTargets(kc, namespace, 'bot', 'False', /names StatefulSet db, not found/);
    expect(missing.reason).toBe('RestartTargetMissing');
    const warning = await waitFor(
      async () =>
        (await eventsFor(kc, namespace, 'bot')).find(
          (event) => event.reason === 'RestartTargetMissing' && event.note.includes('names StatefulSet db,'),
        ),
      { description: 'a RestartTargetMissing event naming StatefulSet db' },
    );
    expect(warning.type).toBe('Warning');
    const audited = auditLines('restart-target-missing').filter((line) =>
      line.message?.includes('names StatefulSet db,'),
    );
    expect(audited.map((line) => line.apiKey)).toEqual(['bot']);
    // No rotation happened: the key is as first issued.
    expect((await waitForReady(kc, namespace, 'bot')).status?.rotationCount).toBe(0);

    await createWorkload(kc, namespace, 'StatefulSet', 'db', podSpec('unrelated', 'env'));
    const found = await waitForTargets(kc, namespace, 'bot', 'True');
    expect(found.reason).toBe('RestartTargetsFound');
    await waitFor(() => (auditLines('restart-target-found').length === 1 ? true : undefined), {
      description: 'a restart-target-found audit line',
    });

    await apps.deleteNamespacedDeployment({ namespace, name: 'web' });
    await waitForTargets(kc, namespace, 'bot', 'False', /names Deployment web, not found/);

    // Targets removed from the spec: the condition goes with them.
    await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject({
      group: 'keyrotor.dev',
      version: 'v1alpha1',
      namespace,
      plural: 'apikeys',
      name: 'bot',
      body: [{ op: 'remove', path: '/spec/rolloutRestartTargets' }],
    });
    await waitFor(
      async () =>
        (await readApiKey(kc, namespace, 'bot')).status?.conditions?.some(
          (c) => c.type === 'RestartTargetsReady',
        ) === false
          ? true
          : undefined,
      { description: 'the RestartTargetsReady condition to be removed' },
    );
  });

  it('restarts the reload-annotated workloads that use the rotated Secret, each way it can be used, once', async () => {
    await createWorkload(kc, namespace, 'Deployment', 'volume', podSpec('bot', 'volume'), RELOAD);
    await createWorkload(kc, namespace, 'Deployment', 'projected', podSpec('bot', 'projected'), RELOAD);
    await createWorkload(kc, namespace, 'Deployment', 'env', podSpec('bot', 'env'), RELOAD);
    await createWorkload(kc, namespace, 'StatefulSet', 'envfrom', podSpec('bot', 'envFrom'), RELOAD);
    await createWorkload(kc, namespace, 'DaemonSet', 'agent', podSpec('bot', 'volume'), RELOAD);
    // Uses the Secret but does not ask; asks but uses another Secret; asks with another value.
    await createWorkload(kc, namespace, 'Deployment', 'plain', podSpec('bot', 'envFrom'));
    await createWorkload(kc, namespace, 'Deployment', 'other', podSpec('unrelated', 'envFrom'), RELOAD);
    await createWorkload(kc, namespace, 'Deployment', 'maybe', podSpec('bot', 'envFrom'), {
      [ANNOTATION_RELOAD]: 'yes',
    });
    await createApiKey(kc, namespace, 'bot');
    const first = await waitForReady(kc, namespace, 'bot');
    await operator.controller.idle();
    // Issuing the first key replaces nothing: nothing is restarted.
    expect(Object.values(await restartedAt(kc, namespace)).filter(Boolean)).toEqual([]);
    const before = await apps.readNamespacedDeployment({ namespace, name: 'volume' });

    await requestRotation(kc, namespace, 'bot', 'now');
    await waitForReady(kc, namespace, 'bot', { keyIdNot: first.status?.keyId ?? '' });
    const restarted = await waitFor(
      async () => {
        const found = await restartedAt(kc, namespace);
        const expected = [
          'Deployment/volume',
          'Deployment/projected',
          'Deployment/env',
          'StatefulSet/envfrom',
          'DaemonSet/agent',
        ];
        return expected.every((id) => found[id] !== undefined) ? found : undefined;
      },
      { description: 'every reload-annotated workload using Secret bot to be restarted' },
    );
    expect(restarted['Deployment/plain']).toBeUndefined();
    expect(restarted['Deployment/other']).toBeUndefined();
    expect(restarted['Deployment/maybe']).toBeUndefined();
    await operator.controller.idle();
    await waitFor(
      async () => {
        const events = await eventsFor(kc, namespace, 'bot');
        return events.filter((event) => event.reason === 'WorkloadRestarted').length === 5 ? true : undefined;
      },
      { description: 'a WorkloadRestarted event for each of the five' },
    );

    // A restart is a change of the workload, and must not lead to another: one pod-template change each.
    operator.controller.resyncNow();
    await operator.controller.idle();
    const after = await apps.readNamespacedDeployment({ namespace, name: 'volume' });
    expect(after.metadata?.generation).toBe((before.metadata?.generation ?? 0) + 1);
    expect(after.spec?.template.metadata?.annotations?.[ANNOTATION_RESTARTED_AT]).toBe(
      restarted['Deployment/volume'],
    );
  });

  it('restarts a workload both named as a target and annotated once per rotation', async () => {
    await createWorkload(kc, namespace, 'Deployment', 'both', podSpec('bot', 'env'), RELOAD);
    await createApiKey(kc, namespace, 'bot', {
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'both' }],
    });
    await waitForTargets(kc, namespace, 'bot', 'True');
    const before = await apps.readNamespacedDeployment({ namespace, name: 'both' });
    await requestRotation(kc, namespace, 'bot', 'once');
    await waitFor(
      async () =>
        (await eventsFor(kc, namespace, 'bot')).some((event) => event.reason === 'WorkloadRestarted')
          ? true
          : undefined,
      { description: 'a WorkloadRestarted event' },
    );
    await operator.controller.idle();
    const after = await apps.readNamespacedDeployment({ namespace, name: 'both' });
    expect(after.metadata?.generation).toBe((before.metadata?.generation ?? 0) + 1);
    expect(
      (await eventsFor(kc, namespace, 'bot')).filter((event) => event.reason === 'WorkloadRestarted'),
    ).toHaveLength(1);
  });
});
