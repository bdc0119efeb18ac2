// M3 of the security review, as the tenant would try it: an ApiKey that rotates every second
// (expiresAfter: 1h, rotateBefore: 59m59s) would make the shared operator write a Secret, a status,
// Events, a verifier and workload restarts every second. The API server refuses it at apply time.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKey, ApiKeySpec } from '../../operator/src/api/types.ts';
import { adminKubeConfig, createTestNamespace, failureStatus } from '../support/kube.ts';
import { apiKeyManifest } from '../support/operator.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';

describe('rotation limits, against a tenant', () => {
  const admin = adminKubeConfig();
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let tenant: Tenant;
  let custom: CustomObjectsApi;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(admin, 'limits'));
    tenant = await createTenant(admin, namespace);
    custom = tenant.kc.makeApiClient(CustomObjectsApi);
  });
  afterAll(async () => {
    await removeNamespace();
  });

  const create = (name: string, spec: Partial<ApiKeySpec>) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      body: {
        ...apiKeyManifest(namespace, name, spec),
        // What the review's PoC adds to the churn: a restart of the tenant's workload on each rotation.
        spec: {
          scopes: ['prices:read'],
          rolloutRestartTargets: [{ kind: 'StatefulSet', name: 'db' }],
          ...spec,
        },
      },
    }) as Promise<ApiKey>;

  const messageOf = async (call: Promise<unknown>) => {
    const { code, body } = await failureStatus(call);
    expect(code).toBe(422);
    return (JSON.parse(body) as { message: string }).message;
  };

  it("refuses the tenant's expiresAfter 1h with rotateBefore 59m59s (a rotation every second), naming rotateBefore", async () => {
    const message = await messageOf(
      create('churn', { expiresAfter: '1h', rotation: { rotateBefore: '59m59s' } }),
    );
    expect(message).toContain('spec.rotation.rotateBefore: Invalid value: ');
    expect(message).toContain(
      'spec.rotation.rotateBefore "59m59s" leaves less than 5m between automatic rotations',
    );
    const { code } = await failureStatus(
      custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: 'churn',
      }),
    );
    expect(code).toBe(404);
  });

  it("accepts the tenant's expiresAfter 1h with rotateBefore 55m (a rotation every 5 minutes)", async () => {
    const created = await create('every-five', { expiresAfter: '1h', rotation: { rotateBefore: '55m' } });
    expect(created.spec.expiresAfter).toBe('1h');
    expect(created.spec.rotation?.rotateBefore).toBe('55m');
  });

  it('refuses the tenant editing an accepted ApiKey into one that rotates every second, and keeps the spec', async () => {
    await create('edited', { expiresAfter: '1h', rotation: { rotateBefore: '30m' } });
    const patch = (rotateBefore: string) =>
      custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: 'edited',
          body: { spec: { rotation: { rotateBefore } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    expect(await messageOf(patch('59m59s'))).toContain(
      'spec.rotation.rotateBefore "59m59s" leaves less than 5m between automatic rotations',
    );
    const kept = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name: 'edited',
    })) as ApiKey;
    expect(kept.spec.rotation?.rotateBefore).toBe('30m');
  });
});
