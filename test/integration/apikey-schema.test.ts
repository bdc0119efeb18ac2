// The API server itself refuses bad ApiKeys at apply time, with messages a person understands.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKeySpec } from '../../operator/src/api/types.ts';
import { adminKubeConfig, createTestNamespace, failureStatus } from '../support/kube.ts';
import { apiKeyManifest, createApiKey, readApiKey } from '../support/operator.ts';

describe('the ApiKey schema', () => {
  const kc = adminKubeConfig();
  const custom = kc.makeApiClient(CustomObjectsApi);
  let namespace: string;
  let removeNamespace: () => Promise<void>;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'schema'));
  });
  afterAll(async () => {
    await removeNamespace();
  });

  const rejection = async (spec: Partial<ApiKeySpec> | Record<string, unknown>) => {
    const { code, body } = await failureStatus(
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        body: apiKeyManifest(namespace, 'rejected', spec),
      }),
    );
    expect(code).toBe(422);
    return (JSON.parse(body) as { message: string }).message;
  };

  it('fills in the defaults', async () => {
    const created = await createApiKey(kc, namespace, 'defaults');
    expect(created.spec).toEqual({
      scopes: ['prices:read'],
      environment: 'production',
      expiresAfter: '90d',
      keyPrefix: 'kr',
      keyBits: 256,
    });
  });

  it.each([
    [{ scopes: ['Prices Read'] }, 'scope "Prices Read" must look like resource:action in lowercase'],
    [{ scopes: [] }, 'spec.scopes: Invalid value: 0: spec.scopes in body should have at least 1 items'],
    [{ scopes: ['prices:read', 'prices:read'] }, 'Duplicate value: "prices:read"'],
    [
      { expiresAfter: '3 days' },
      '"3 days" is not a duration: write whole days (30d) or hours, minutes and seconds',
    ],
    [{ expiresAfter: '30m' }, 'expiresAfter must be between 1h and 3650d'],
    [{ expiresAfter: '4000d' }, 'expiresAfter must be between 1h and 3650d'],
    [
      { expiresAfter: '30d', rotation: { rotateBefore: '720h' } },
      'rotation.rotateBefore must be shorter than expiresAfter',
    ],
    [
      { expiresAfter: '1d', rotation: { gracePeriod: '48h' } },
      'rotation.gracePeriod must be shorter than expiresAfter',
    ],
    [{ environment: 'prod' }, 'Unsupported value: "prod"'],
    [{ keyBits: 64 }, 'Unsupported value: 64'],
    [{ keyPrefix: 'Bad_Prefix' }, 'keyPrefix "Bad_Prefix" must be 2 to 12 lowercase letters or digits'],
    [{ secretName: 'Not_A_Name' }, 'secretName "Not_A_Name" is not a valid Secret name'],
    [
      { secretTemplate: { labels: { 'keyrotor.dev/apikey': 'x' } } },
      'secretTemplate.labels may not set keys starting with keyrotor.dev/',
    ],
    [
      { secretTemplate: { annotations: { 'app.kubernetes.io/managed-by': 'me' } } },
      'secretTemplate.annotations may not set keys',
    ],
    [{ revocationReason: 'leaked' }, 'revocationReason is only meaningful with revoked: true'],
  ])('refuses %j with a clear message', async (spec, message) => {
    expect(await rejection(spec)).toContain(message);
  });

  it('refuses a change of secretName, which would strand the workloads mounting the Secret', async () => {
    await createApiKey(kc, namespace, 'fixed-name', { secretName: 'first' });
    const { code, body } = await failureStatus(
      custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: 'fixed-name',
          body: { spec: { secretName: 'second' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(code).toBe(422);
    expect(body).toContain('spec.secretName cannot be changed');
    expect((await readApiKey(kc, namespace, 'fixed-name')).spec.secretName).toBe('first');
  });
});
