// The environment rule against a tenant (issue 16, item 7; docs/adr/0003-environment-mismatch.md):
// the policies in policies/ refuse a tenant's ApiKey in a namespace without the keyrotor.dev/environment
// label (when required) or with a label that is no environment; and when an administrator relabels a
// namespace under existing keys, the operator stops issuing and rotating them and their issuer's
// verifier stops listing them, until the label and the keys agree again.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DATA_API_KEY, DATA_KEY_ID, GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKeySpec } from '../../operator/src/api/types.ts';
import { generateKey } from '../../operator/src/keys/format.ts';
import { VERIFIER_FILE, parseVerifierDocument } from '../../operator/src/verify/document.ts';
import { adminKubeConfig, createTestNamespace, failureStatus } from '../support/kube.ts';
import {
  apiKeyManifest,
  createIssuer,
  eventsFor,
  readApiKey,
  requestRotation,
  startOperator,
  waitForEvent,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';
import { tool } from '../support/tools.ts';
import { waitFor } from '../support/wait.ts';

const policies = path.resolve(import.meta.dirname, '../../policies');
const LABEL = 'keyrotor.dev/environment';
const VALID = 'development, test, staging, production';
/** Only this file's namespaces carry this label with this value: its policy bindings select them. */
const SCOPE_LABEL = 'keyrotor.dev/environments-test';
const suffix = randomBytes(3).toString('hex');
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

interface Manifest {
  metadata: { name: string };
  [field: string]: unknown;
}

/**
 * The policies as printed in policies/, renamed with this file's suffix and bound to its namespaces
 * only: bound cluster-wide, the required label would refuse the ApiKeys of every other test file.
 */
async function applyPolicies(files: readonly string[]): Promise<void> {
  const items: unknown[] = [];
  for (const file of files) {
    const policy = load(await readFile(path.join(policies, file), 'utf8')) as Manifest;
    const name = `${policy.metadata.name}-${suffix}`;
    items.push({ ...policy, metadata: { ...policy.metadata, name } });
    items.push({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: {
        policyName: name,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { [SCOPE_LABEL]: suffix } } },
      },
    });
  }
  const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
  const applied = await tool('kubectl', ['apply', '-f', '-'], list);
  expect(applied.stderr).toBe('');
}

describe('environments, against a tenant', () => {
  const admin = adminKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const removals: (() => Promise<void>)[] = [];
  const tenants = new Map<string, Tenant>();
  const tenantOf = (role: 'unlabelled' | 'misnamed' | 'relabelled'): Tenant => {
    const tenant = tenants.get(role);
    if (tenant === undefined) throw new Error(`no tenant ${role}: beforeAll failed`);
    return tenant;
  };
  let operator: TestOperator | undefined;

  const labelNamespace = (name: string, value: string | null) =>
    core.patchNamespace({ name, body: { metadata: { labels: { [LABEL]: value } } } }, mergePatch);

  /** The tenant creates an ApiKey; resolves to the API server's refusal message, if any. */
  const create = (tenant: Tenant, name: string, spec: Partial<ApiKeySpec>) =>
    tenant.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: tenant.namespace,
      plural: PLURAL,
      body: apiKeyManifest(tenant.namespace, name, spec),
    });
  const refusal = async (call: Promise<unknown>) => {
    const { code, body } = await failureStatus(call);
    expect(code).toBe(403);
    return (JSON.parse(body) as { message: string }).message;
  };
  /** The key ids the issuer's verifier Secret lists (none while it does not exist). */
  const listed = async (namespace: string) => {
    const secret = await core
      .readNamespacedSecret({ namespace, name: 'prices-verifier' })
      .catch(() => undefined);
    const text = Buffer.from(secret?.data?.[VERIFIER_FILE] ?? '', 'base64').toString('utf8');
    return text === '' ? [] : parseVerifierDocument(text).keys.map((entry) => entry.keyId);
  };
  const waitListed = (namespace: string, keyId: string, wanted: boolean, description: string) =>
    waitFor(async () => ((await listed(namespace)).includes(keyId) === wanted ? true : undefined), {
      description,
    });
  const readyMessage = (apiKey: { status?: { conditions?: { type: string; message?: string }[] } }) =>
    apiKey.status?.conditions?.find((condition) => condition.type === 'Ready')?.message ?? '';

  beforeAll(async () => {
    await applyPolicies(['environments-policy.yaml', 'require-environment-label-policy.yaml']);
    const labels = { unlabelled: undefined, misnamed: 'prod', relabelled: 'development' };
    for (const [role, environment] of Object.entries(labels)) {
      const created = await createTestNamespace(admin, `env-${role}`);
      removals.push(created.remove);
      await core.patchNamespace(
        {
          name: created.name,
          body: {
            metadata: { labels: { [SCOPE_LABEL]: suffix, ...(environment ? { [LABEL]: environment } : {}) } },
          },
        },
        mergePatch,
      );
      tenants.set(role, await createTenant(admin, created.name));
    }
    // A binding reaches the API server's admission within moments: wait until it refuses.
    await waitFor(
      async () => {
        const tenant = tenantOf('unlabelled');
        const { code } = await failureStatus(
          tenant.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: tenant.namespace,
            plural: PLURAL,
            body: apiKeyManifest(tenant.namespace, 'probe'),
            dryRun: 'All',
          }),
        ).catch(() => ({ code: undefined }));
        return code === 403 ? true : undefined;
      },
      { description: 'the environment policies to take effect' },
    );
    const relabelled = tenantOf('relabelled').namespace;
    operator = await startOperator(admin, relabelled, {
      decideConfig: { generateKey, requireEnvironmentLabel: true },
    });
    await createIssuer(admin, relabelled, 'prices', { scopes: ['prices:*'] });
  });
  afterAll(async () => {
    await operator?.stop();
    await Promise.all(removals.map((remove) => remove()));
    const names = ['keyrotor-environments', 'keyrotor-require-environment-label'].map(
      (name) => `${name}-${suffix}`,
    );
    await tool('kubectl', [
      'delete',
      '--ignore-not-found',
      'validatingadmissionpolicybinding,validatingadmissionpolicy',
      ...names,
    ]);
  });

  it('with the label required, refuses an ApiKey in an unlabelled namespace, naming the label', async () => {
    const tenant = tenantOf('unlabelled');
    const { namespace } = tenant;
    const message = await refusal(create(tenant, 'nowhere', { environment: 'development' }));
    expect(message).toContain(`namespace ${namespace} has no label ${LABEL}`);
    expect(message).toContain(VALID);
    expect(message).toContain('spec.environment=development');
    const { code } = await failureStatus(readApiKey(admin, namespace, 'nowhere'));
    expect(code).toBe(404);
  });

  it('refuses an ApiKey in a namespace whose label is not an environment, listing the valid values', async () => {
    const tenant = tenantOf('misnamed');
    const { namespace } = tenant;
    for (const environment of ['production', 'development'] as const) {
      const message = await refusal(create(tenant, `misnamed-${environment}`, { environment }));
      expect(message).toContain(
        `namespace ${namespace} is labelled ${LABEL}=prod, which is not an environment`,
      );
      expect(message).toContain(`the valid values are ${VALID}`);
    }
  });

  it('stops a development key in a namespace relabelled production: no rotation, out of the verifier; back when relabelled', async () => {
    const tenant = tenantOf('relabelled');
    const { namespace } = tenant;
    await create(tenant, 'dev-key', {
      environment: 'development',
      issuerRef: { namespace, name: 'prices' },
    });
    const issued = await waitForReady(admin, namespace, 'dev-key');
    const keyId = issued.status?.keyId ?? '';
    await waitListed(namespace, keyId, true, 'the verifier to list the development key');

    await labelNamespace(namespace, 'production');
    const refused = await waitForReady(admin, namespace, 'dev-key', {
      status: 'False',
      reason: 'EnvironmentMismatch',
    });
    const message = readyMessage(refused);
    expect(message).toContain(`${LABEL}=production`);
    expect(message).toContain('spec.environment is development');
    expect(message).toContain(VALID);
    const warning = await waitForEvent(admin, namespace, 'dev-key', 'EnvironmentMismatch');
    expect(warning.type).toBe('Warning');
    await waitListed(namespace, keyId, false, 'the verifier to drop the development key');

    // The tenant asks for a rotation, then edits the spec: a reconcile of the new generation has seen both.
    await requestRotation(tenant.kc, namespace, 'dev-key', 'please');
    await tenant.kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: 'dev-key',
        body: { spec: { scopes: ['prices:write'] } },
      },
      mergePatch,
    );
    const held = await waitForReady(admin, namespace, 'dev-key', {
      status: 'False',
      reason: 'EnvironmentMismatch',
    });
    expect(held.metadata.generation).toBe(2);
    expect(held.status?.keyId).toBe(keyId);
    expect(held.status?.lastRotateRequest).not.toBe('please');
    const secret = await core.readNamespacedSecret({ namespace, name: 'dev-key' });
    expect(Buffer.from(secret.data?.[DATA_KEY_ID] ?? '', 'base64').toString('utf8')).toBe(keyId);
    expect((await eventsFor(admin, namespace, 'dev-key')).map((event) => event.reason)).not.toContain(
      'Rotated',
    );
    expect(await listed(namespace)).not.toContain(keyId);

    // Relabelled back: Ready again, the held-back rotation happens now, and the verifier lists the key.
    await labelNamespace(namespace, 'development');
    const back = await waitForReady(admin, namespace, 'dev-key');
    await waitListed(namespace, back.status?.keyId ?? '', true, 'the verifier to list the key again');
    expect(back.status?.lastRotateRequest).toBe('please');
  });

  it('with --require-environment-label, stops a key whose namespace loses its label, and lists it again once relabelled', async () => {
    const tenant = tenantOf('relabelled');
    const { namespace } = tenant;
    // Whatever the test before left: this test starts from a namespace labelled development.
    await labelNamespace(namespace, 'development');
    await create(tenant, 'kept-key', {
      environment: 'development',
      issuerRef: { namespace, name: 'prices' },
    });
    const issued = await waitForReady(admin, namespace, 'kept-key');
    const keyId = issued.status?.keyId ?? '';
    await waitListed(namespace, keyId, true, 'the verifier to list the key');

    await labelNamespace(namespace, null);
    const refused = await waitForReady(admin, namespace, 'kept-key', {
      status: 'False',
      reason: 'EnvironmentMismatch',
    });
    const message = readyMessage(refused);
    expect(message).toContain(`namespace ${namespace} has no label ${LABEL}`);
    expect(message).toContain(VALID);
    expect(refused.status?.keyId).toBe(keyId);
    // No label names another environment: only the operator's decision, in the status, drops the key.
    await waitListed(namespace, keyId, false, 'the verifier to drop the key of the unlabelled namespace');

    await labelNamespace(namespace, 'development');
    const back = await waitForReady(admin, namespace, 'kept-key');
    expect(back.status?.keyId).toBe(keyId);
    await waitListed(namespace, keyId, true, 'the verifier to list the key again');
  });

  it('refuses moving a key to another environment than the label, but lets the tenant revoke it after a relabel', async () => {
    const tenant = tenantOf('relabelled');
    const { namespace } = tenant;
    await labelNamespace(namespace, 'development');
    await create(tenant, 'moving', { environment: 'development' });
    await waitForReady(admin, namespace, 'moving');
    const patch = (spec: Partial<ApiKeySpec>) =>
      tenant.kc
        .makeApiClient(CustomObjectsApi)
        .patchNamespacedCustomObject(
          { group: GROUP, version: VERSION, namespace, plural: PLURAL, name: 'moving', body: { spec } },
          mergePatch,
        );
    const message = await refusal(patch({ environment: 'production' }));
    expect(message).toContain(
      `spec.environment cannot become production in namespace ${namespace}, which is labelled ${LABEL}=development`,
    );

    // Relabelled production: the development key may no longer be rotated, but revocation always wins.
    await labelNamespace(namespace, 'production');
    await waitForReady(admin, namespace, 'moving', { status: 'False', reason: 'EnvironmentMismatch' });
    await patch({ revoked: true, revocationReason: 'namespace is production now' });
    await waitForReady(admin, namespace, 'moving', { status: 'False', reason: 'Revoked' });
    const secret = await core.readNamespacedSecret({ namespace, name: 'moving' });
    expect(Object.keys(secret.data ?? {})).not.toContain(DATA_API_KEY);
  });
});
