// A tenant who may write its namespace's Secrets and ApiKeys (not read Secrets, not write status) tries
// to make keyrotor or an API's verifier believe what it wrote: a longer life, a key of its choosing, an
// unreadable date, a revoked key put back, a revocation that does not go through, a grace period cut
// short. Threats T3-T8 in docs/threat-model.md. Every write here goes through the tenant's token.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ANNOTATION_ROTATE, GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKey, ApiKeySpec } from '../../operator/src/api/types.ts';
import { formatKey, keyHash, keyId } from '../../operator/src/keys/format.ts';
import {
  VERIFIER_FILE,
  parseVerifierDocument,
  type VerifierDocument,
} from '../../operator/src/verify/document.ts';
import { adminKubeConfig, createTestNamespace } from '../support/kube.ts';
import {
  apiKeyManifest,
  createIssuer,
  eventsFor,
  readApiKey,
  secretValue,
  startOperator,
  waitForEvent,
  waitForIssuer,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

describe('a tenant writing its key Secret', () => {
  const admin = adminKubeConfig();
  const adminCore = admin.makeApiClient(CoreV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: TestOperator;
  let tenant: Tenant;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(admin, 'tamper'));
    operator = await startOperator(admin, namespace);
    tenant = await createTenant(admin, namespace);
    // The API's issuer, in the same namespace (it admits its own namespace): keys live at most 30 days.
    await createIssuer(admin, namespace, 'prices', { scopes: ['prices:*'], maxExpiresAfter: '30d' });
  });
  afterAll(async () => {
    await operator.stop();
    await removeNamespace();
  });

  const tenantCore = () => tenant.kc.makeApiClient(CoreV1Api);
  const tenantCustom = () => tenant.kc.makeApiClient(CustomObjectsApi);

  /** The tenant's ApiKey for the prices API, Ready and listed in the verifier. */
  async function issuedKey(name: string, spec: Partial<ApiKeySpec> = {}): Promise<ApiKey> {
    await tenantCustom().createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      body: apiKeyManifest(namespace, name, {
        scopes: ['prices:read'],
        expiresAfter: '30d',
        issuerRef: { namespace, name: 'prices' },
        ...spec,
      }),
    });
    const ready = await waitForReady(admin, namespace, name);
    await waitForListed(ready.status?.keyId ?? '');
    return ready;
  }

  async function verifier(): Promise<VerifierDocument> {
    const secret = await adminCore.readNamespacedSecret({ namespace, name: 'prices-verifier' });
    // keyrotor's own reader: a document it refuses would leave every API on a stale one.
    return parseVerifierDocument(Buffer.from(secret.data?.[VERIFIER_FILE] ?? '', 'base64').toString('utf8'));
  }

  async function waitForListed(id: string) {
    return waitFor(async () => (await verifier()).keys.find((entry) => entry.keyId === id), {
      description: `key ${id} in the verifier`,
    });
  }

  async function waitForUnlisted(id: string) {
    await waitFor(
      async () => ((await verifier()).keys.some((entry) => entry.keyId === id) ? undefined : true),
      {
        description: `key ${id} out of the verifier`,
      },
    );
  }

  /** A merge patch of ApiKey `name` as the tenant. */
  async function tenantPatchApiKey(name: string, body: object): Promise<void> {
    await tenantCustom().patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body },
      mergePatch,
    );
  }

  /** A patch as the tenant; the API server answers with the whole Secret, as it would the tenant. */
  async function tenantPatch(name: string, body: object): Promise<V1Secret> {
    return tenantCore().patchNamespacedSecret({ namespace, name, body }, mergePatch);
  }

  async function waitForNewKey(name: string, old: string): Promise<ApiKey> {
    return waitFor(
      async () => {
        const apiKey = await readApiKey(admin, namespace, name);
        return apiKey.status?.keyId !== undefined && apiKey.status.keyId !== old ? apiKey : undefined;
      },
      { description: `ApiKey ${name} to get a key other than ${old}` },
    );
  }

  it('T3: moving issued-at and expires-at to 2099 does not move the key past the issuer’s 30 days', async () => {
    const before = await issuedKey('extend');
    const old = before.status?.keyId ?? '';
    await tenantPatch('extend', {
      metadata: { annotations: { 'keyrotor.dev/issued-at': '2099-01-01T00:00:00.000Z' } },
      data: { 'expires-at': b64('2099-01-31T00:00:00.000Z') },
    });
    const after = await waitForNewKey('extend', old);
    expect((await eventsFor(admin, namespace, 'extend')).map((event) => event.reason)).toContain(
      'SecretTampered',
    );
    await waitForUnlisted(old);
    const entry = await waitForListed(after.status?.keyId ?? '');
    expect(Date.parse(entry.notAfter) - Date.now()).toBeLessThanOrEqual(30 * DAY);
    expect(Date.parse(after.status?.expiresAt ?? '') - Date.now()).toBeLessThanOrEqual(30 * DAY);
  });

  it('T4: a key of the tenant’s choosing, with its matching key-id, never reaches the verifier', async () => {
    const before = await issuedKey('planted');
    const chosen = formatKey(
      { prefix: 'kr', environment: 'production', bits: 256 },
      new Uint8Array(32).fill(1),
    );
    await tenantPatch('planted', { data: { 'api-key': b64(chosen), 'key-id': b64(keyId(chosen)) } });
    const after = await waitForNewKey('planted', before.status?.keyId ?? '');
    await waitForListed(after.status?.keyId ?? '');
    const hashes = (await verifier()).keys.map((entry) => entry.sha256);
    expect(hashes.includes(keyHash(chosen))).toBe(false);
    await waitForEvent(admin, namespace, 'planted', 'SecretTampered');
  });

  it('T5: a date past year 9999 in the Secret leaves every verifier document readable', async () => {
    const before = await issuedKey('poison');
    await tenantPatch('poison', {
      metadata: { annotations: { 'keyrotor.dev/issued-at': '+010000-01-01T00:00:00.000Z' } },
      data: { 'expires-at': b64('+010000-01-31T00:00:00.000Z') },
    });
    const after = await waitForNewKey('poison', before.status?.keyId ?? '');
    await waitForListed(after.status?.keyId ?? '');
    const document = await verifier();
    expect(document.keys.every((entry) => /^\d{4}-/.test(entry.notAfter))).toBe(true);
    const issuer = await waitForIssuer(admin, namespace, 'prices', () => true, 'read');
    expect(issuer.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('T6: revoked together with a secretTemplate the controller refuses still empties the Secret and the verifier', async () => {
    const before = await issuedKey('revoke-bad');
    const old = before.status?.keyId ?? '';
    await tenantPatchApiKey('revoke-bad', {
      spec: { revoked: true, secretTemplate: { labels: { team: 'quant desk' } } },
    });
    await waitFor(
      async () => {
        const secret = await adminCore.readNamespacedSecret({ namespace, name: 'revoke-bad' });
        return secretValue(secret, 'api-key') === undefined ? true : undefined;
      },
      { description: 'the revoked key out of its Secret' },
    );
    await waitForUnlisted(old);
    const status = await readApiKey(admin, namespace, 'revoke-bad');
    expect(status.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('Revoked');
  });

  it('T7: putting back the Secret as it was before a revocation does not bring the revoked key back', async () => {
    const before = await issuedKey('replay');
    const old = before.status?.keyId ?? '';
    // The tenant captures its Secret (a no-op patch answers with the whole object) ...
    const captured = await tenantPatch('replay', { metadata: { labels: { captured: 'yes' } } });
    await tenantPatchApiKey('replay', { spec: { revoked: true } });
    await waitForUnlisted(old);
    await waitFor(
      async () =>
        (await readApiKey(admin, namespace, 'replay')).status?.conditions?.find((c) => c.type === 'Ready')
          ?.reason === 'Revoked'
          ? true
          : undefined,
      { description: 'ApiKey replay revoked' },
    );
    // ... and puts it back, sealed by keyrotor but older than the revocation, then un-revokes.
    await tenantPatch('replay', {
      metadata: { annotations: captured.metadata?.annotations },
      data: captured.data,
    });
    await tenantPatchApiKey('replay', { spec: { revoked: false } });
    const after = await waitForNewKey('replay', old);
    await waitForListed(after.status?.keyId ?? '');
    expect((await verifier()).keys.some((entry) => entry.keyId === old)).toBe(false);
    const secret = await adminCore.readNamespacedSecret({ namespace, name: 'replay' });
    expect(secretValue(secret, 'key-id')).not.toBe(old);
  });

  it('T19: annotating another ApiKey’s Secret keyrotor.dev/adopt=true does not let a second ApiKey take it', async () => {
    const owner = await issuedKey('owned');
    await tenantPatch('owned', { metadata: { annotations: { 'keyrotor.dev/adopt': 'true' } } });
    await tenantCustom().createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      body: apiKeyManifest(namespace, 'thief', { scopes: ['prices:read'], secretName: 'owned' }),
    });
    await waitFor(
      async () =>
        (await readApiKey(admin, namespace, 'thief')).status?.conditions?.find((c) => c.type === 'Ready')
          ?.reason === 'SecretConflict'
          ? true
          : undefined,
      { description: 'ApiKey thief to conflict' },
    );
    const secret = await adminCore.readNamespacedSecret({ namespace, name: 'owned' });
    expect(secretValue(secret, 'key-id')).toBe(owner.status?.keyId);
    expect(secret.metadata?.ownerReferences?.map((ref) => ref.name)).toEqual(['owned']);
  });

  it('T20: a keyrotor field the tenant adds is removed once, the key stays, and nothing loops', async () => {
    const before = await issuedKey('stray');
    await tenantPatch('stray', { metadata: { annotations: { 'keyrotor.dev/revoked-key-id': 'x' } } });
    await waitForEvent(admin, namespace, 'stray', 'SecretDrifted');
    await waitFor(
      async () => {
        const secret = await adminCore.readNamespacedSecret({ namespace, name: 'stray' });
        return secret.metadata?.annotations?.['keyrotor.dev/revoked-key-id'] === undefined
          ? secret
          : undefined;
      },
      { description: 'the stray annotation removed' },
    );
    await operator.controller.idle();
    const after = await readApiKey(admin, namespace, 'stray');
    expect(after.status?.keyId).toBe(before.status?.keyId);
    expect(after.status?.rotationCount ?? 0).toBe(0);
    const reasons = (await eventsFor(admin, namespace, 'stray')).map((event) => event.reason);
    expect(reasons.includes('SecretTampered')).toBe(false);
  });

  it('T21: stripping the seal, emptying the key and planting a previous key lists nothing of the tenant’s', async () => {
    const before = await issuedKey('stripped');
    const chosen = formatKey(
      { prefix: 'kr', environment: 'production', bits: 256 },
      new Uint8Array(32).fill(5),
    );
    await tenantCore().patchNamespacedSecret(
      {
        namespace,
        name: 'stripped',
        body: [
          { op: 'remove', path: '/metadata/annotations/keyrotor.dev~1seal' },
          { op: 'remove', path: '/metadata/annotations/keyrotor.dev~1key-sequence' },
          { op: 'remove', path: '/data/api-key' },
          { op: 'add', path: '/data/previous-api-key', value: b64(chosen) },
          { op: 'add', path: '/data/previous-key-id', value: b64(keyId(chosen)) },
          {
            op: 'add',
            path: '/data/previous-expires-at',
            value: b64(new Date(Date.now() + DAY).toISOString()),
          },
        ],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    const after = await waitForNewKey('stripped', before.status?.keyId ?? '');
    await waitForListed(after.status?.keyId ?? '');
    expect((await verifier()).keys.some((entry) => entry.sha256 === keyHash(chosen))).toBe(false);
    await waitForEvent(admin, namespace, 'stripped', 'SecretTampered');
  });

  it('T8: a second rotation inside the grace period keeps the first key until its grace ends', async () => {
    const before = await issuedKey('grace', { rotation: { gracePeriod: '1d' } });
    const first = before.status?.keyId ?? '';
    const rotate = (value: string) =>
      tenantPatchApiKey('grace', { metadata: { annotations: { [ANNOTATION_ROTATE]: value } } });
    await rotate('one');
    const second = await waitForNewKey('grace', first);
    // Audited before the Secret write (intent) and after it (done): a crash between leaves the intent.
    const rotated = operator.logLines
      .map(
        (line) => JSON.parse(line) as { audit?: boolean; action?: string; phase?: string; apiKey?: string },
      )
      .filter((line) => line.audit === true && line.action === 'rotated' && line.apiKey === 'grace');
    expect(rotated.map((line) => line.phase)).toEqual(['intent', 'done']);
    await rotate('two');
    await waitForEvent(admin, namespace, 'grace', 'RotationDeferred');
    const status = await readApiKey(admin, namespace, 'grace');
    expect(status.status?.keyId).toBe(second.status?.keyId);
    expect(status.status?.previousKeyId).toBe(first);
    expect(status.status?.conditions?.find((c) => c.type === 'RotationDeferred')?.status).toBe('True');
    const secret = await adminCore.readNamespacedSecret({ namespace, name: 'grace' });
    expect(secretValue(secret, 'previous-key-id')).toBe(first);
    await waitForListed(first);
  });
});
