// spec.secretTemplate.data against the real API server: the Secret carries the key in the shapes the
// workload asked for, a workload reads them from a kubelet-style volume, a rotation with a grace period
// re-renders them, and a broken template is InvalidSpec while the Secret keeps working unchanged.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ANNOTATION_RENDERED_DATA, GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import { secretFiles, writeSecretVolume } from '../../operator/src/verify/secret-volume.testing.ts';
import { adminKubeConfig, createTestNamespace } from '../support/kube.ts';
import {
  createApiKey,
  eventsFor,
  requestRotation,
  secretValue,
  startOperator,
  waitForEvent,
  waitForReady,
  writeCount,
  type TestOperator,
} from '../support/operator.ts';
import { waitFor } from '../support/wait.ts';

const CONFIG =
  'api:\n  url: https://prices.example\n  key: {{ .key }}\n  previousKey: "{{ .previousKey }}"\n';

/** What a workload does: read the file from the mount when it builds a request, and take the key line. */
async function keyFromConfig(mount: string): Promise<{ key: string; previousKey: string }> {
  const text = await readFile(path.join(mount, 'config.yaml'), 'utf8');
  return {
    key: /^ {2}key: (\S+)$/m.exec(text)?.[1] ?? '',
    previousKey: /^ {2}previousKey: "(\S*)"$/m.exec(text)?.[1] ?? '',
  };
}

describe('secretTemplate.data', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: TestOperator;
  let mount: string;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'shaping'));
    operator = await startOperator(kc, namespace);
    mount = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-volume-'));
  });
  afterAll(async () => {
    await operator.stop();
    await removeNamespace();
    await rm(mount, { recursive: true, force: true });
  });

  const readSecret = (name: string) => core.readNamespacedSecret({ namespace, name });
  const patchSpec = (name: string, spec: object) =>
    custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { spec } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

  it('renders API_KEY and a config file, and re-renders both on a rotation with a grace period', async () => {
    await createApiKey(kc, namespace, 'shaped', {
      rotation: { gracePeriod: '10m' },
      secretTemplate: { data: { API_KEY: '{{ .key }}', 'config.yaml': CONFIG } },
    });
    const first = await waitForReady(kc, namespace, 'shaped');
    const secret = await readSecret('shaped');
    const firstKey = secretValue(secret, 'api-key') ?? '';
    expect(firstKey).not.toBe('');
    expect(secretValue(secret, 'API_KEY')).toBe(firstKey);
    expect(secretValue(secret, 'key-id')).toBe(first.status?.keyId);
    expect(secret.metadata?.annotations?.[ANNOTATION_RENDERED_DATA]).toBe('API_KEY,config.yaml');
    await writeSecretVolume(mount, secretFiles(secret.data), 1);
    expect(await keyFromConfig(mount)).toEqual({ key: firstKey, previousKey: '' });
    expect((await readFile(path.join(mount, 'API_KEY'), 'utf8')).trim()).toBe(firstKey);

    await requestRotation(kc, namespace, 'shaped', 'first');
    const rotated = await waitForReady(kc, namespace, 'shaped', { keyIdNot: first.status?.keyId ?? '' });
    const after = await waitFor(
      async () => {
        const current = await readSecret('shaped');
        return secretValue(current, 'key-id') === rotated.status?.keyId ? current : undefined;
      },
      { description: 'the rotated key in Secret shaped' },
    );
    const newKey = secretValue(after, 'api-key') ?? '';
    expect(secretValue(after, 'API_KEY')).toBe(newKey);
    expect(secretValue(after, 'previous-api-key')).toBe(firstKey);
    // The kubelet's next sync: the same file, the new key in it, the old one as previousKey.
    await writeSecretVolume(mount, secretFiles(after.data), 2);
    expect(await keyFromConfig(mount)).toEqual({ key: newKey, previousKey: firstKey });
    expect((await readFile(path.join(mount, 'API_KEY'), 'utf8')).trim()).toBe(newKey);
    // Key material reaches the Secret only: not the status, the events or the log.
    const elsewhere = JSON.stringify([
      rotated.status,
      await eventsFor(kc, namespace, 'shaped'),
      operator.logLines,
    ]);
    expect(elsewhere).not.toContain(newKey);
    expect(elsewhere).not.toContain(firstKey);
  });

  it('a broken template is InvalidSpec with a Warning, and the Secret keeps working unchanged', async () => {
    await createApiKey(kc, namespace, 'broken', { secretTemplate: { data: { API_KEY: '{{ .key }}' } } });
    const before = await waitForReady(kc, namespace, 'broken');
    const working = await readSecret('broken');

    await patchSpec('broken', {
      secretTemplate: { data: { API_KEY: 'Bearer {{ .key }', 'x.yaml': '{{ .token }}' } },
    });
    const refused = await waitForReady(kc, namespace, 'broken', { status: 'False', reason: 'InvalidSpec' });
    const message =
      refused.status?.conditions?.find((condition) => condition.type === 'Ready')?.message ?? '';
    expect(message).toContain('secretTemplate.data["API_KEY"]: line 1, column 8: {{ is never closed with }}');
    expect(message).toContain('secretTemplate.data["x.yaml"]: line 1, column 1: unknown field ".token"');
    expect(message).toContain(`key ${before.status?.keyId ?? ''} is unchanged and still valid`);
    const warning = await waitForEvent(kc, namespace, 'broken', 'InvalidSpec');
    expect(warning.type).toBe('Warning');
    const key = secretValue(working, 'api-key') ?? '';
    expect(JSON.stringify([refused.status, warning])).not.toContain(key);

    // Nothing is written while the spec is broken, however often keyrotor looks.
    await operator.controller.idle();
    const writes = writeCount(operator.requests);
    operator.controller.resyncNow();
    await operator.controller.idle();
    expect(writeCount(operator.requests)).toBe(writes);
    const kept = await readSecret('broken');
    expect(kept.metadata?.resourceVersion).toBe(working.metadata?.resourceVersion);
    expect(kept.data).toEqual(working.data);

    // Mended (and changed): re-rendered at once, without rotating the key.
    await patchSpec('broken', {
      secretTemplate: { data: { API_KEY: null, 'x.yaml': 'token: {{ .key }}\n' } },
    });
    const mended = await waitForReady(kc, namespace, 'broken');
    expect(mended.status?.keyId).toBe(before.status?.keyId);
    expect(mended.status?.rotationCount).toBe(before.status?.rotationCount);
    const rerendered = await waitFor(
      async () => {
        const current = await readSecret('broken');
        return secretValue(current, 'API_KEY') === undefined ? current : undefined;
      },
      { description: 'API_KEY gone from Secret broken' },
    );
    expect(secretValue(rerendered, 'x.yaml')).toBe(`token: ${key}\n`);
    expect(secretValue(rerendered, 'api-key')).toBe(key);
    // In a mounted volume, the file of the data key taken out of the template goes with the next sync.
    const volume = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-volume-'));
    try {
      await writeSecretVolume(volume, secretFiles(working.data), 1);
      await writeSecretVolume(volume, secretFiles(rerendered.data), 2);
      await expect(readFile(path.join(volume, 'API_KEY'))).rejects.toThrow(/ENOENT/);
      expect(await readFile(path.join(volume, 'x.yaml'), 'utf8')).toBe(`token: ${key}\n`);
    } finally {
      await rm(volume, { recursive: true, force: true });
    }
  });
});
