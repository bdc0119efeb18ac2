// No Secret replicators through an ApiKey (issue 16, item 6): a tenant who may create ApiKeys could
// otherwise put a replicator's annotation in spec.secretTemplate and have Reflector, kubed or
// kubernetes-replicator copy the key into namespaces beyond its readers. The chart's policy
// keyrotor-replicators refuses that, on create and on update, unless the chart value allows the key.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKeySpec } from '../../operator/src/api/types.ts';
import { adminKubeConfig, createTestNamespace, failureStatus } from '../support/kube.ts';
import { apiKeyManifest, createApiKey } from '../support/operator.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';
import { waitFor } from '../support/wait.ts';
import {
  ALL_POLICIES_OFF,
  applyObjects,
  deleteObjects,
  deniedBy,
  renamePolicies,
  renderChart,
  type KubeObject,
} from './chart-policies.ts';

const POLICY_KINDS = ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];
const REFLECTOR = 'reflector.v1.k8s.emberstack.com/reflection-allowed';
const REPLICATOR = 'replicator.v1.mittwald.de/replicate-to';
const RANCHER = 'management.cattle.io/project-scoped-secret';

describe('Secret replicators in secretTemplate', () => {
  const admin = adminKubeConfig();
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};
  let tenant: Tenant;
  let suffix: string;
  let policy: string;
  let applied: KubeObject[] = [];

  /** Renders and applies the chart's replicators policy (renamed for this test) with these flags. */
  async function install(flags: string[]): Promise<void> {
    const objects = await renderChart(
      'replicators',
      namespace,
      [...ALL_POLICIES_OFF, ...flags],
      POLICY_KINDS,
    );
    expect(objects.map((object) => object.kind).sort()).toEqual(POLICY_KINDS);
    applied = renamePolicies(objects, suffix);
    await applyObjects(applied);
  }

  const template = (secretTemplate: NonNullable<ApiKeySpec['secretTemplate']>): Partial<ApiKeySpec> => ({
    secretTemplate,
  });
  /** The tenant's create, as a dry run: admission runs, nothing is stored. */
  const tenantCreate = (name: string, spec: Partial<ApiKeySpec>) =>
    tenant.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      body: apiKeyManifest(namespace, name, spec),
      dryRun: 'All',
    });

  beforeAll(async () => {
    const created = await createTestNamespace(admin, 'replicators');
    namespace = created.name;
    removeNamespace = created.remove;
    suffix = namespace.slice(-6);
    policy = `keyrotor-replicators-${suffix}`;
    tenant = await createTenant(admin, namespace);
    await install(['--set', 'admissionPolicies.replicators.enabled=true']);
    await waitFor(
      async () => {
        const refused = await failureStatus(
          tenantCreate('probe', template({ annotations: { [REFLECTOR]: 'true' } })),
        ).catch(() => undefined);
        return refused?.body.includes(deniedBy(policy)) === true ? true : undefined;
      },
      { description: `policy ${policy} to refuse a Reflector annotation` },
    );
  });
  afterAll(async () => {
    await deleteObjects(applied);
    await removeNamespace();
  });

  it.each([
    ['annotations', REFLECTOR, 'emberstack Reflector'],
    ['annotations', REPLICATOR, 'mittwald kubernetes-replicator'],
    ['annotations', 'kubed.appscode.com/sync', 'Config Syncer (kubed)'],
    ['labels', RANCHER, 'Rancher'],
  ] as const)('refuses the tenant %s %s, naming the field and the key', async (field, key, replicator) => {
    const refused = await failureStatus(tenantCreate('copied', template({ [field]: { [key]: 'p-1' } })));
    expect(refused.code).toBe(403);
    expect(refused.body).toContain(deniedBy(policy));
    expect(refused.body).toContain(
      `spec.secretTemplate.${field}: ${key} switches on a Secret replicator (${replicator})`,
    );
  });

  it('refuses an update that adds one to an admitted ApiKey', async () => {
    await createApiKey(
      tenant.kc,
      namespace,
      'plain',
      template({ annotations: { 'example.com/team': 'quant' } }),
    );
    const refused = await failureStatus(
      tenant.kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: 'plain',
          body: { spec: { secretTemplate: { annotations: { [REPLICATOR]: 'other' } } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(refused.body).toContain(deniedBy(policy));
    expect(refused.body).toContain(`spec.secretTemplate.annotations: ${REPLICATOR} switches on`);
  });

  it('admits what the chart value allows, and only that', async () => {
    await install([
      '--set',
      'admissionPolicies.replicators.enabled=true',
      '--set',
      'admissionPolicies.replicators.allowedKeys={reflector.v1.k8s.emberstack.com/}',
    ]);
    await waitFor(
      () => tenantCreate('probe', template({ annotations: { [REFLECTOR]: 'true' } })).catch(() => undefined),
      { description: 'the allowed key to be admitted' },
    );
    await createApiKey(tenant.kc, namespace, 'reflected', template({ annotations: { [REFLECTOR]: 'true' } }));
    const refused = await failureStatus(
      tenantCreate('copied', template({ annotations: { [REFLECTOR]: 'true', [REPLICATOR]: 'other' } })),
    );
    expect(refused.body).toContain(deniedBy(policy));
    expect(refused.body).toContain(`spec.secretTemplate.annotations: ${REPLICATOR} switches on`);
  });
});
