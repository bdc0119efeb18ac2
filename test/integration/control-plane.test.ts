// Proves that the tests talk to a real Kubernetes control plane: a fake could not pass these.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { CoreV1Api, RbacAuthorizationV1Api, VersionApi } from '@kubernetes/client-node';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  adminKubeConfig,
  createTestNamespace,
  failureStatus,
  rawRequest,
  tokenKubeConfig,
  waitForNotFound,
} from '../support/kube.ts';

const pins = readFileSync(path.join(import.meta.dirname, '../cluster/pins.env'), 'utf8');
const pinnedVersion = /^K8S_VERSION=(\S+)$/m.exec(pins)?.[1];

describe('the local control plane', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void>;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'control-plane'));
  });
  afterAll(async () => {
    await removeNamespace();
  });

  it('reports the pinned Kubernetes version', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(pinnedVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(version.gitVersion).toBe(pinnedVersion);
  });

  it('rejects a Secret whose labels field has the wrong type', async () => {
    const response = await rawRequest(kc, 'POST', `/api/v1/namespaces/${namespace}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'wrongly-typed', labels: 'not-a-map' },
    });
    expect(response.status).toBe(400);
    expect(response.body).toContain(
      'cannot unmarshal string into Go struct field ObjectMeta.metadata.labels',
    );
  });

  it('denies a ServiceAccount without RBAC, with a token minted through TokenRequest', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'no-rights' } } });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'guarded' }, stringData: { a: 'b' } },
    });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      namespace,
      name: 'no-rights',
      body: { spec: { expirationSeconds: 600, audiences: [] } },
    });
    const token = tokenRequest.status?.token;
    expect(token).toMatch(/^ey/);

    const asServiceAccount = tokenKubeConfig(kc, token ?? '').makeApiClient(CoreV1Api);
    const denied = await failureStatus(asServiceAccount.readNamespacedSecret({ namespace, name: 'guarded' }));
    expect(denied.code).toBe(403);
    expect(denied.body).toContain(`system:serviceaccount:${namespace}:no-rights`);

    // The same token works once RBAC allows it, so the 403 was RBAC's decision, not a broken token.
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'read-guarded' },
        rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['guarded'], verbs: ['get'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'read-guarded' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-guarded' },
        subjects: [{ kind: 'ServiceAccount', name: 'no-rights', namespace }],
      },
    });
    const secret = await asServiceAccount.readNamespacedSecret({ namespace, name: 'guarded' });
    expect(secret.metadata?.name).toBe('guarded');
  });

  it('garbage-collects an object whose owner is deleted', async () => {
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' } } });
    const dependent: V1ConfigMap = {
      metadata: {
        name: 'dependent',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '' },
        ],
      },
    };
    await core.createNamespacedConfigMap({ namespace, body: dependent });
    await core.deleteNamespacedConfigMap({ namespace, name: 'owner' });
    await waitForNotFound(
      () => core.readNamespacedConfigMap({ namespace, name: 'dependent' }),
      'the dependent ConfigMap to be garbage-collected',
    );
  });

  it('really removes a deleted namespace and what it held', async () => {
    const { name, remove } = await createTestNamespace(kc, 'doomed');
    await core.createNamespacedConfigMap({ namespace: name, body: { metadata: { name: 'content' } } });
    await remove();
    await waitForNotFound(() => core.readNamespace({ name }), `namespace ${name} to be deleted`);
    const gone = await failureStatus(core.readNamespacedConfigMap({ namespace: name, name: 'content' }));
    expect(gone.code).toBe(404);
  });
});
