// A tenant who may create Secrets in its namespace (not read them) gives Secrets keyrotor's label and
// type, and plants 1 MiB in keyrotor's own Secret, to make keyrotor hold that much in memory for each
// (threat T23 in docs/threat-model.md). keyrotor's Secret cache must keep only what keyrotor would have
// written, and keyrotor must go on managing its own keys. Every write here goes through the tenant's
// token; what keyrotor caches is read from its own gauges (kube/secret-cache.ts).
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  DATA_API_KEY,
  DATA_PREVIOUS_API_KEY,
  GROUP,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  PLURAL,
  SECRET_TYPE,
  VERSION,
} from '../../operator/src/api/names.ts';
import { keyId } from '../../operator/src/keys/format.ts';
import { adminKubeConfig, createTestNamespace } from '../support/kube.ts';
import {
  apiKeyManifest,
  eventsFor,
  readApiKey,
  requestRotation,
  secretValue,
  startOperator,
  waitForEvent,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';
import { waitFor } from '../support/wait.ts';

const KIB = 1024;
/** Junk of `bytes` (a Secret's data may be up to 1 MiB in all), base64 as the API takes it. */
const junk = (fill: string, bytes = 450 * KIB) => Buffer.alloc(bytes, fill).toString('base64');

describe('a tenant filling keyrotor’s Secret cache', () => {
  const admin = adminKubeConfig();
  const adminCore = admin.makeApiClient(CoreV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: TestOperator;
  let tenant: Tenant;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(admin, 'cache'));
    operator = await startOperator(admin, namespace);
    tenant = await createTenant(admin, namespace);
  });
  afterAll(async () => {
    await operator.stop();
    await removeNamespace();
  });

  /** One of keyrotor's gauges, as its /metrics would serve it now. */
  async function gauge(name: string): Promise<number> {
    const metric = operator.controller.metrics.registry.getSingleMetric(name);
    if (metric === undefined) throw new Error(`keyrotor has no metric ${name}`);
    return (await metric.get()).values[0]?.value ?? Number.NaN;
  }
  const cachedSecrets = () => gauge('keyrotor_secret_cache_objects');
  const cachedBytes = () => gauge('keyrotor_secret_cache_bytes');

  it('a Secret with keyrotor’s label and type and 900 KiB of junk is cached in under 1 KiB, and left alone', async () => {
    const secretsBefore = await cachedSecrets();
    const bytesBefore = await cachedBytes();
    await tenant.kc.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'flood', labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE } },
        type: SECRET_TYPE,
        // Half of it in a field keyrotor reads, half in one of the tenant's own: neither is kept.
        data: { [DATA_API_KEY]: junk('k'), blob: junk('b') },
      },
    });
    await waitFor(async () => ((await cachedSecrets()) === secretsBefore + 1 ? true : undefined), {
      description: 'keyrotor to cache the flood Secret',
    });
    expect((await cachedBytes()) - bytesBefore).toBeLessThan(KIB);
    // Not keyrotor's: nothing of it changed.
    const stored = await adminCore.readNamespacedSecret({ namespace, name: 'flood' });
    expect(stored.data?.blob).toBe(junk('b'));
    expect(stored.data?.[DATA_API_KEY]).toBe(junk('k'));
    expect(stored.metadata?.ownerReferences).toBeUndefined();
  });

  it('none of 900 KiB planted in keyrotor’s own Secret is cached, its planted previous key is stripped, and it rotates as before', async () => {
    await tenant.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      body: apiKeyManifest(namespace, 'bot', {
        secretTemplate: { annotations: { 'example.com/owner': 'desk-7' } },
        rotation: { gracePeriod: '1h' },
      }),
    });
    const issued = await waitForReady(admin, namespace, 'bot');
    const secret = await adminCore.readNamespacedSecret({ namespace, name: 'bot' });
    const key = secretValue(secret, DATA_API_KEY) ?? '';
    expect(keyId(key)).toBe(issued.status?.keyId);
    expect(secret.metadata?.annotations?.['example.com/owner']).toBe('desk-7');
    // Nothing loops on the cached view of its own Secret (template annotations included).
    await operator.controller.idle();
    const bytesBefore = await cachedBytes();

    await tenant.kc.makeApiClient(CoreV1Api).patchNamespacedSecret(
      // A keyrotor field (stripped) and one of the tenant's own (left, as any field keyrotor does not write).
      { namespace, name: 'bot', body: { data: { [DATA_PREVIOUS_API_KEY]: junk('p'), blob: junk('b') } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitForEvent(admin, namespace, 'bot', 'SecretDrifted');
    await waitFor(
      async () => {
        const current = await adminCore.readNamespacedSecret({ namespace, name: 'bot' });
        return current.data?.[DATA_PREVIOUS_API_KEY] === undefined ? current : undefined;
      },
      { description: 'the planted previous-api-key removed' },
    );
    await operator.controller.idle();
    expect((await cachedBytes()) - bytesBefore).toBeLessThan(KIB);
    const planted = await adminCore.readNamespacedSecret({ namespace, name: 'bot' });
    expect(planted.data?.blob).toBe(junk('b'));
    expect((await readApiKey(admin, namespace, 'bot')).status?.keyId).toBe(issued.status?.keyId);
    expect((await eventsFor(admin, namespace, 'bot')).map((event) => event.reason)).not.toContain(
      'SecretTampered',
    );

    await requestRotation(admin, namespace, 'bot', 'after-the-flood');
    const rotated = await waitForReady(admin, namespace, 'bot', { keyIdNot: issued.status?.keyId ?? '' });
    const after = await adminCore.readNamespacedSecret({ namespace, name: 'bot' });
    expect(keyId(secretValue(after, DATA_API_KEY) ?? '')).toBe(rotated.status?.keyId);
    expect(secretValue(after, DATA_PREVIOUS_API_KEY)).toBe(key);
  });
});
