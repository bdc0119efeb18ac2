// A tenant who may write its namespace's Secrets and ApiKeys (not read Secrets, not write status) and
// the parts keyrotor renders from spec.secretTemplate.data: an edited part is not believed, a part
// the tenant takes over with its own field manager still goes on revocation, and a revoked key is in
// no part at all. Threat T36 in docs/threat-model.md. Every write here goes through the tenant's token.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

import { ANNOTATION_RENDERED_DATA, GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKey } from '../../operator/src/api/types.ts';
import { apiKeyManifest, readApiKey, secretValue, waitForEvent, waitForReady } from '../support/operator.ts';
import { tenantSuite } from '../support/tenant-suite.ts';
import { waitFor } from '../support/wait.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const TEMPLATES = { API_KEY: '{{ .key }}', 'config.yaml': 'api:\n  key: {{ .key }}\n' };

describe('a tenant writing the rendered parts of its key Secret', () => {
  const suite = tenantSuite('shaped-tamper');
  const { admin } = suite;
  const adminCore = admin.makeApiClient(CoreV1Api);

  const tenantCore = () => suite.tenant.kc.makeApiClient(CoreV1Api);
  const tenantCustom = () => suite.tenant.kc.makeApiClient(CustomObjectsApi);
  const readSecret = (name: string) => adminCore.readNamespacedSecret({ namespace: suite.namespace, name });

  async function issued(name: string): Promise<{ apiKey: ApiKey; key: string }> {
    await tenantCustom().createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: suite.namespace,
      plural: PLURAL,
      body: apiKeyManifest(suite.namespace, name, {
        scopes: ['prices:read'],
        secretTemplate: { data: TEMPLATES },
      }),
    });
    const apiKey = await waitForReady(admin, suite.namespace, name);
    const secret = await readSecret(name);
    expect(secret.metadata?.annotations?.[ANNOTATION_RENDERED_DATA]).toBe('API_KEY,config.yaml');
    return { apiKey, key: secretValue(secret, 'api-key') ?? '' };
  }

  /** A merge patch as the tenant; the API server answers with the whole Secret, as it would the tenant. */
  const tenantPatch = (name: string, body: object): Promise<V1Secret> =>
    tenantCore().patchNamespacedSecret({ namespace: suite.namespace, name, body }, mergePatch);

  async function waitForNewKey(name: string, old: string | undefined): Promise<ApiKey> {
    return waitFor(
      async () => {
        const apiKey = await readApiKey(admin, suite.namespace, name);
        return apiKey.status?.keyId !== undefined && apiKey.status.keyId !== old ? apiKey : undefined;
      },
      { description: `ApiKey ${name} to get a key other than ${old ?? '(none)'}` },
    );
  }

  it('T36: an edited rendered part is not believed: a fresh key, rendered into every part', async () => {
    const { apiKey, key } = await issued('edited');
    await tenantPatch('edited', {
      data: { 'config.yaml': b64('api:\n  key: kr_live_planted\n  url: https://evil.example\n') },
    });
    expect((await waitForEvent(admin, suite.namespace, 'edited', 'SecretTampered')).type).toBe('Warning');
    const replaced = await waitForNewKey('edited', apiKey.status?.keyId);
    const secret = await waitFor(
      async () => {
        const current = await readSecret('edited');
        return secretValue(current, 'key-id') === replaced.status?.keyId ? current : undefined;
      },
      { description: 'the fresh key in Secret edited' },
    );
    const fresh = secretValue(secret, 'api-key') ?? '';
    expect(secretValue(secret, 'config.yaml')).toBe(`api:\n  key: ${fresh}\n`);
    expect(secretValue(secret, 'API_KEY')).toBe(fresh);
    // No grace for a key whose Secret was tampered with: the old key is nowhere in the Secret.
    expect(Object.keys(secret.data ?? {}).some((part) => secretValue(secret, part)?.includes(key))).toBe(
      false,
    );
  });

  it('T36: a record of rendered parts with a name dropped is tampering, not a way to keep a part past revocation', async () => {
    const { apiKey } = await issued('unlisted');
    await tenantPatch('unlisted', {
      metadata: { annotations: { [ANNOTATION_RENDERED_DATA]: 'config.yaml' } },
    });
    expect((await waitForEvent(admin, suite.namespace, 'unlisted', 'SecretTampered')).type).toBe('Warning');
    await waitForNewKey('unlisted', apiKey.status?.keyId);
    await waitFor(
      async () =>
        (await readSecret('unlisted')).metadata?.annotations?.[ANNOTATION_RENDERED_DATA] ===
        'API_KEY,config.yaml'
          ? true
          : undefined,
      { description: 'the record of rendered parts restored' },
    );
  });

  it('T36: revocation leaves no key in any part, even one the tenant took over with its own field manager', async () => {
    const { key } = await issued('revoked');
    // The tenant cannot read Secrets, but a patch answers with the whole Secret: it learns the value,
    // and applies it unchanged under its own field manager (the seal still matches), so that
    // keyrotor's server-side apply alone would leave it behind.
    const seen = await tenantPatch('revoked', {});
    const value = seen.data?.API_KEY ?? '';
    await tenantCore().patchNamespacedSecret(
      {
        namespace: suite.namespace,
        name: 'revoked',
        body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'revoked' }, data: { API_KEY: value } },
        fieldManager: 'tenant-tool',
        force: true,
      },
      setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
    );
    await tenantCustom().patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: suite.namespace,
        plural: PLURAL,
        name: 'revoked',
        body: { spec: { revoked: true } },
      },
      mergePatch,
    );
    await waitForReady(admin, suite.namespace, 'revoked', { status: 'False', reason: 'Revoked' });
    const secret = await waitFor(
      async () => {
        const current = await readSecret('revoked');
        return current.data?.API_KEY === undefined && current.data?.['api-key'] === undefined
          ? current
          : undefined;
      },
      { description: 'no key in Secret revoked' },
    );
    const texts = Object.keys(secret.data ?? {}).map((part) => secretValue(secret, part) ?? '');
    expect(texts.join('\n')).not.toContain(key);
    expect(Object.keys(secret.data ?? {})).toEqual(['scopes']);
    expect(secret.metadata?.annotations?.[ANNOTATION_RENDERED_DATA]).toBeUndefined();
  });
});
