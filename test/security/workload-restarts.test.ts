// Restarts stay in the tenant's own namespace (threat model T37): a tenant who writes ApiKeys and
// workloads in its namespace, with its own token, cannot make keyrotor restart a workload anywhere else,
// by naming it as a target or by the reload annotation, and cannot make restarts spin: a restart only
// follows a key replaced in a Secret of the same namespace, and is no cause of another.
import { AppsV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ANNOTATION_RELOAD } from '../../operator/src/api/names.ts';
import { adminKubeConfig, createTestNamespace, rawRequest } from '../support/kube.ts';
import {
  createApiKey,
  readApiKey,
  requestRotation,
  startOperator,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';
import { waitFor } from '../support/wait.ts';
import { createWorkload, podSpec, restartedAt, waitForTargets } from '../support/workloads.ts';

const RELOAD = { [ANNOTATION_RELOAD]: 'true' };

describe('workload restarts stay in the namespace of the rotated Secret', () => {
  const admin = adminKubeConfig();
  let tenantNamespace: string;
  let victimNamespace: string;
  const removals: (() => Promise<void>)[] = [];
  let operator: TestOperator | undefined;
  let tenant: Tenant;

  beforeAll(async () => {
    for (const prefix of ['restarts-tenant', 'restarts-victim']) {
      const created = await createTestNamespace(admin, prefix);
      removals.push(created.remove);
      if (prefix === 'restarts-tenant') tenantNamespace = created.name;
      else victimNamespace = created.name;
    }
    operator = await startOperator(admin, tenantNamespace, {
      namespaces: [tenantNamespace, victimNamespace],
      restartDebounceMs: 200,
    });
    tenant = await createTenant(admin, tenantNamespace);
    // The tenant may also write workloads in its namespace, as the built-in edit role allows.
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const rules = [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch'] }];
    await rbac.createNamespacedRole({
      namespace: tenantNamespace,
      body: { metadata: { name: 'apps' }, rules },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: tenantNamespace,
      body: {
        metadata: { name: 'apps' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'apps' },
        subjects: [{ kind: 'ServiceAccount', name: tenant.name, namespace: tenantNamespace }],
      },
    });
    // The victim team: a key Secret named like the tenant's, used by a workload that asks for reloads.
    await createWorkload(
      admin,
      victimNamespace,
      'Deployment',
      'victim',
      podSpec('shared', 'envFrom'),
      RELOAD,
    );
    await createApiKey(admin, victimNamespace, 'shared');
    await waitForReady(admin, victimNamespace, 'shared');
  });
  afterAll(async () => {
    await operator?.stop();
    for (const remove of removals) await remove();
  });

  it("restarts nothing in another namespace, whether the tenant names it, annotates, or rotates a key of the victim's name", async () => {
    // A target has no namespace field: one sent anyway is refused or dropped by the schema.
    const sneaky = await rawRequest(
      tenant.kc,
      'POST',
      `/apis/keyrotor.dev/v1alpha1/namespaces/${tenantNamespace}/apikeys`,
      {
        apiVersion: 'keyrotor.dev/v1alpha1',
        kind: 'ApiKey',
        metadata: { name: 'sneaky' },
        spec: {
          scopes: ['prices:read'],
          rolloutRestartTargets: [{ kind: 'Deployment', name: 'victim', namespace: victimNamespace }],
        },
      },
    );
    if (sneaky.status === 201) {
      const stored = await readApiKey(admin, tenantNamespace, 'sneaky');
      expect(stored.spec.rolloutRestartTargets).toEqual([{ kind: 'Deployment', name: 'victim' }]);
      const condition = await waitForTargets(admin, tenantNamespace, 'sneaky', 'False', /Deployment victim/);
      expect(condition.reason).toBe('RestartTargetMissing');
    } else {
      expect(sneaky.status).toBeGreaterThanOrEqual(400);
    }
    // The tenant's own key, of the same Secret name as the victim's, named and annotated both ways.
    await createApiKey(tenant.kc, tenantNamespace, 'shared', {
      rolloutRestartTargets: [{ kind: 'Deployment', name: 'victim' }],
      rotation: { gracePeriod: '0s' },
    });
    await createWorkload(tenant.kc, tenantNamespace, 'Deployment', 'own', podSpec('shared', 'env'), RELOAD);
    await createWorkload(
      tenant.kc,
      tenantNamespace,
      'Deployment',
      'unrelated',
      podSpec('not-a-key', 'env'),
      RELOAD,
    );
    const first = await waitForReady(admin, tenantNamespace, 'shared');
    await waitForTargets(admin, tenantNamespace, 'shared', 'False', /Deployment victim/);

    for (const request of ['one', 'two', 'three']) {
      const before = (await readApiKey(admin, tenantNamespace, 'shared')).status?.keyId ?? '';
      await requestRotation(tenant.kc, tenantNamespace, 'shared', request);
      await waitForReady(admin, tenantNamespace, 'shared', { keyIdNot: before });
    }
    expect((await readApiKey(admin, tenantNamespace, 'shared')).status?.keyId).not.toBe(first.status?.keyId);
    // Its own workload that uses the key restarts (the mechanism works); nothing else does.
    await waitFor(
      async () =>
        (await restartedAt(admin, tenantNamespace))['Deployment/own'] !== undefined ? true : undefined,
      { description: "the tenant's own reload-annotated Deployment to be restarted" },
    );
    await operator?.controller.idle();
    expect((await restartedAt(admin, tenantNamespace))['Deployment/unrelated']).toBeUndefined();
    expect(await restartedAt(admin, victimNamespace)).toEqual({ 'Deployment/victim': undefined });
  });

  it('makes no restart of edits to a workload, or of the restart itself (no loop)', async () => {
    const apps = tenant.kc.makeApiClient(AppsV1Api);
    await createWorkload(
      tenant.kc,
      tenantNamespace,
      'Deployment',
      'churn',
      podSpec('shared', 'envFrom'),
      RELOAD,
    );
    for (let edit = 0; edit < 5; edit += 1) {
      await apps.patchNamespacedDeployment({
        namespace: tenantNamespace,
        name: 'churn',
        body: [{ op: 'add', path: '/metadata/labels', value: { edit: String(edit) } }],
      });
    }
    operator?.controller.resyncNow();
    await operator?.controller.idle();
    expect((await restartedAt(admin, tenantNamespace))['Deployment/churn']).toBeUndefined();

    // One rotation: one restart (one request, nothing else pending for it), and then none more.
    const generation = async () =>
      (await apps.readNamespacedDeployment({ namespace: tenantNamespace, name: 'churn' })).metadata
        ?.generation ?? 0;
    const before = await generation();
    const keyId = (await readApiKey(admin, tenantNamespace, 'shared')).status?.keyId ?? '';
    await requestRotation(tenant.kc, tenantNamespace, 'shared', 'four');
    await waitForReady(admin, tenantNamespace, 'shared', { keyIdNot: keyId });
    const restarted = await waitFor(
      async () => (await restartedAt(admin, tenantNamespace))['Deployment/churn'],
      { description: 'churn to be restarted by the rotation' },
    );
    await apps.patchNamespacedDeployment({
      namespace: tenantNamespace,
      name: 'churn',
      body: [{ op: 'add', path: '/metadata/labels', value: { edit: 'after' } }],
    });
    operator?.controller.resyncNow();
    await operator?.controller.idle();
    expect(await generation()).toBe(before + 1);
    expect((await restartedAt(admin, tenantNamespace))['Deployment/churn']).toBe(restarted);
  });
});
