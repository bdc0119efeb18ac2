// Argo Rollouts as restart targets, with the real Rollout CRD (test/support/argo-rollouts.ts): absent,
// a Rollout target is reported missing with the reason and nothing fails; once the CRD is installed
// keyrotor finds it (the probe runs at each resync), watches Rollouts, and restarts them by spec.restartAt.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ANNOTATION_RELOAD } from '../../operator/src/api/names.ts';
import { installRolloutCrd, removeRolloutCrd } from '../support/argo-rollouts.ts';
import {
  ALL_POLICIES_OFF,
  applyObjects,
  deleteObjects,
  deniedBy,
  messageOf,
  renamePolicies,
  renderChart,
} from '../security/chart-policies.ts';
import { adminKubeConfig, createTestNamespace, failureStatus, tokenKubeConfig } from '../support/kube.ts';
import {
  createApiKey,
  eventsFor,
  requestRotation,
  startOperator,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { waitFor } from '../support/wait.ts';
import { waitForTargets } from '../support/workloads.ts';

const rollout = (name: string, annotations: Record<string, string>, secret: string) => ({
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Rollout',
  metadata: { name, annotations },
  spec: {
    selector: { matchLabels: { app: name } },
    strategy: { canary: {} },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'app', image: 'app:1', envFrom: [{ secretRef: { name: secret } }] }] },
    },
  },
});

describe('Argo Rollouts', () => {
  const kc = adminKubeConfig();
  const custom = kc.makeApiClient(CustomObjectsApi);
  const rollouts = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' };
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: TestOperator;

  beforeAll(async () => {
    await removeRolloutCrd(kc);
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'rollouts'));
    operator = await startOperator(kc, namespace, { restartDebounceMs: 200 });
  });
  afterAll(async () => {
    await operator.stop();
    await removeNamespace();
    await removeRolloutCrd(kc);
  });

  const restartAt = async (name: string) =>
    (
      (await custom.getNamespacedCustomObject({ ...rollouts, namespace, name })) as {
        spec?: { restartAt?: string };
      }
    ).spec?.restartAt;

  it('reports a Rollout target missing while the CRD is not installed, and keeps working', async () => {
    expect(operator.controller.ready).toBe(true);
    // No grace period: the second rotation below is not deferred behind the first one's.
    await createApiKey(kc, namespace, 'bot', {
      rolloutRestartTargets: [{ kind: 'Rollout', name: 'canary' }],
      rotation: { gracePeriod: '0s' },
    });
    const missing = await waitForTargets(kc, namespace, 'bot', 'False', /Rollout canary/);
    expect(missing).toMatchObject({ reason: 'RestartTargetMissing' });
    expect(missing.message).toContain('the CRD rollouts.argoproj.io is not installed');
    await waitForReady(kc, namespace, 'bot');
    // A rotation with the kind absent: a Warning, never a failed reconcile.
    await requestRotation(kc, namespace, 'bot', 'without-crd');
    const warning = await waitFor(
      async () =>
        (await eventsFor(kc, namespace, 'bot')).find((event) => event.reason === 'WorkloadNotFound'),
      { description: 'a WorkloadNotFound event' },
    );
    expect(warning.note).toContain('Rollout canary');
    expect(operator.controller.ready).toBe(true);
  });

  it('finds the CRD once installed, and restarts Rollouts by spec.restartAt, named or annotated', async () => {
    await installRolloutCrd(kc);
    // The kind is probed again at every resync (and every minute while absent).
    await waitForTargets(
      kc,
      namespace,
      'bot',
      'False',
      /^rolloutRestartTargets names Rollout canary, not found/,
      () => {
        operator.controller.resyncNow();
      },
    );
    await custom.createNamespacedCustomObject({
      ...rollouts,
      namespace,
      body: rollout('canary', {}, 'unrelated'),
    });
    await custom.createNamespacedCustomObject({
      ...rollouts,
      namespace,
      body: rollout('reloads', { [ANNOTATION_RELOAD]: 'true' }, 'bot'),
    });
    await custom.createNamespacedCustomObject({
      ...rollouts,
      namespace,
      body: rollout('bystander', {}, 'bot'),
    });
    await waitForTargets(kc, namespace, 'bot', 'True');
    expect(await restartAt('canary')).toBeUndefined();

    await requestRotation(kc, namespace, 'bot', 'with-crd');
    const restarted = await waitFor(
      async () => {
        const [canary, reloads] = [await restartAt('canary'), await restartAt('reloads')];
        return canary !== undefined && reloads !== undefined ? { canary, reloads } : undefined;
      },
      { description: 'both Rollouts to be restarted' },
    );
    // RFC 3339 to the second, as kubectl argo rollouts restart writes it.
    expect(restarted.canary).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(await restartAt('bystander')).toBeUndefined();
  });

  it('is restrained: the self-restraint policy lets keyrotor change nothing of a Rollout but spec.restartAt', async () => {
    const release = `r${namespace.slice(-6)}`;
    const kinds = ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];
    const flags = [...ALL_POLICIES_OFF, '--set', 'admissionPolicies.selfRestraint.enabled=true'];
    const policies = renamePolicies(await renderChart(release, namespace, flags, kinds), release);
    const policy = `keyrotor-self-restraint-${release}`;
    const serviceAccount = `${release}-keyrotor`;
    const core = kc.makeApiClient(CoreV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } });
    // RBAC allows any patch of a Rollout: what refuses the others must be the policy.
    const rules = [{ apiGroups: ['argoproj.io'], resources: ['rollouts'], verbs: ['patch'] }];
    await rbac.createNamespacedRole({ namespace, body: { metadata: { name: serviceAccount }, rules } });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: serviceAccount },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: serviceAccount },
        subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
      },
    });
    const token = await core.createNamespacedServiceAccountToken({
      namespace,
      name: serviceAccount,
      body: { spec: { expirationSeconds: 3600, audiences: [] } },
    });
    const asKeyrotor = tokenKubeConfig(kc, token.status?.token ?? '');
    const asKeyrotorCustom = asKeyrotor.makeApiClient(CustomObjectsApi);
    const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    /** A dry run of a merge patch as keyrotor's ServiceAccount: its HTTP status and answer. */
    const patch = async (body: object): Promise<{ status: number; body: string }> => {
      const request = { ...rollouts, namespace, name: 'canary', body, dryRun: 'All' };
      const call = asKeyrotorCustom.patchNamespacedCustomObject(request, mergePatch);
      const allowed = await call.then(
        () => true,
        () => false,
      );
      if (allowed) return { status: 200, body: '' };
      const failed = await failureStatus(call);
      return { status: failed.code ?? 0, body: failed.body };
    };
    await applyObjects(policies);
    try {
      const refused = await waitFor(
        async () => {
          const answer = await patch({ spec: { replicas: 5 } });
          return answer.status === 422 || answer.status === 403 ? answer : undefined;
        },
        { description: `policy ${policy} to refuse a scale of a Rollout` },
      );
      expect(messageOf(refused.body)).toContain(deniedBy(policy));
      expect(messageOf(refused.body)).toContain('beyond spec.restartAt');
      expect((await patch({ spec: { restartAt: '2030-01-01T00:00:00Z' } })).status).toBe(200);
      for (const body of [
        { metadata: { labels: { evil: 'yes' } } },
        { spec: { template: { spec: { serviceAccountName: 'other' } } } },
        { spec: { restartAt: '2030-01-01T00:00:00Z', paused: true } },
      ])
        expect(messageOf((await patch(body)).body), JSON.stringify(body)).toContain(deniedBy(policy));
    } finally {
      await deleteObjects(policies);
    }
  });
});
