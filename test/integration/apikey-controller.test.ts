// The controller against the real API server: issue, ownership and garbage collection, conflicts,
// drift, bad input, restarts, and no key material anywhere but the Secret.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import { generateKey, keyId, parseKey } from '../../operator/src/keys/format.ts';
import { adminKubeConfig, createTestNamespace, waitForNotFound } from '../support/kube.ts';
import {
  createApiKey,
  eventsFor,
  readApiKey,
  secretValue,
  startOperator,
  waitForEvent,
  waitForReady,
  writeCount,
  type TestOperator,
} from '../support/operator.ts';
import { waitFor } from '../support/wait.ts';

describe('the ApiKey controller', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: TestOperator | undefined;

  // A namespace per test: each operator sees only its own test's ApiKeys.
  beforeEach(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'controller'));
  });
  afterEach(async () => {
    await operator?.stop();
    operator = undefined;
    await removeNamespace();
  });

  const start = async () => {
    operator = await startOperator(kc, namespace);
    return operator;
  };
  const readSecret = (name: string) => core.readNamespacedSecret({ namespace, name });
  const patchApiKey = (name: string, body: object) =>
    custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body },
      mergePatch,
    );

  it('issues a well-formed key into a Secret owned by the ApiKey, with status and an Issued event', async () => {
    await start();
    await createApiKey(kc, namespace, 'issue', {
      environment: 'staging',
      scopes: ['prices:read', 'signals:write'],
    });
    const apiKey = await waitForReady(kc, namespace, 'issue');
    const secret = await readSecret('issue');

    const key = secretValue(secret, 'api-key') ?? '';
    expect(parseKey(key)).toEqual({ ok: true, key: { prefix: 'kr', environment: 'staging', bits: 256 } });
    expect(secret.type).toBe('keyrotor.dev/api-key');
    expect(secret.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'keyrotor',
      'keyrotor.dev/apikey': 'issue',
    });
    expect(secret.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ApiKey', name: 'issue', uid: apiKey.metadata.uid, controller: true }),
    ]);
    expect(secret.metadata?.managedFields?.map((field) => field.manager)).toContain('keyrotor');
    expect(secretValue(secret, 'key-id')).toBe(keyId(key));
    expect(secretValue(secret, 'scopes')).toBe('prices:read signals:write');
    expect(secretValue(secret, 'expires-at')).toBe(apiKey.status?.expiresAt);

    expect(apiKey.status).toMatchObject({ keyId: keyId(key), secretName: 'issue', rotationCount: 0 });
    const lifetime =
      new Date(apiKey.status?.expiresAt ?? 0).getTime() - new Date(apiKey.status?.issuedAt ?? 0).getTime();
    expect(lifetime).toBe(90 * 86_400_000);
    const issued = await waitForEvent(kc, namespace, 'issue', 'Issued');
    expect(issued).toMatchObject({ type: 'Normal', reportingController: 'keyrotor.dev/operator' });
    expect(issued.note).toContain(keyId(key));
    const audit = operator?.logLines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.audit === true);
    expect(audit).toMatchObject({
      action: 'issued',
      namespace,
      apiKey: 'issue',
      keyId: keyId(key),
      secret: 'issue',
    });
  });

  it('lets the garbage collector delete the Secret with its ApiKey', async () => {
    await start();
    await createApiKey(kc, namespace, 'collected');
    await waitForReady(kc, namespace, 'collected');
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name: 'collected',
    });
    await waitForNotFound(
      () => readSecret('collected'),
      'the Secret of a deleted ApiKey to be garbage-collected',
    );
  });

  it('never overwrites a Secret it does not own, and adopts it only when asked', async () => {
    // The Secret is not keyrotor's, so no watch reports its change: keyrotor looks again on a timer.
    operator = await startOperator(kc, namespace, { decideConfig: { generateKey, conflictRecheckMs: 200 } });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'taken' }, stringData: { token: 'theirs' } },
    });
    await createApiKey(kc, namespace, 'conflict', { secretName: 'taken' });
    const refused = await waitForReady(kc, namespace, 'conflict', {
      status: 'False',
      reason: 'SecretConflict',
    });
    expect(refused.status?.conditions?.[0]?.message).toContain('keyrotor.dev/adopt=true');
    expect((await waitForEvent(kc, namespace, 'conflict', 'SecretConflict')).type).toBe('Warning');
    expect(secretValue(await readSecret('taken'), 'token')).toBe('theirs');

    await core.patchNamespacedSecret(
      { namespace, name: 'taken', body: { metadata: { annotations: { 'keyrotor.dev/adopt': 'true' } } } },
      mergePatch,
    );
    await waitForReady(kc, namespace, 'conflict');
    const adopted = await readSecret('taken');
    expect(parseKey(secretValue(adopted, 'api-key') ?? '').ok).toBe(true);
    await waitForEvent(kc, namespace, 'conflict', 'SecretAdopted');
  });

  it('issues a new key, with a Warning, when the Secret is deleted', async () => {
    await start();
    await createApiKey(kc, namespace, 'deleted');
    const before = await waitForReady(kc, namespace, 'deleted');
    await core.deleteNamespacedSecret({ namespace, name: 'deleted' });
    const after = await waitForReady(kc, namespace, 'deleted', { keyIdNot: before.status?.keyId ?? '' });
    expect(secretValue(await readSecret('deleted'), 'key-id')).toBe(after.status?.keyId);
    expect(after.status?.rotationCount).toBe(1);
    expect((await waitForEvent(kc, namespace, 'deleted', 'SecretRecreated')).type).toBe('Warning');
  });

  it('replaces edited key material with a fresh key, with a Warning', async () => {
    await start();
    await createApiKey(kc, namespace, 'tampered');
    const before = await waitForReady(kc, namespace, 'tampered');
    await core.patchNamespacedSecret(
      { namespace, name: 'tampered', body: { stringData: { 'api-key': 'kr_live_chosen_by_someone' } } },
      mergePatch,
    );
    const after = await waitForReady(kc, namespace, 'tampered', { keyIdNot: before.status?.keyId ?? '' });
    const key = secretValue(await readSecret('tampered'), 'api-key') ?? '';
    expect(parseKey(key).ok).toBe(true);
    expect(keyId(key)).toBe(after.status?.keyId);
    expect((await waitForEvent(kc, namespace, 'tampered', 'SecretTampered')).type).toBe('Warning');
  });

  it('restores labels and a Secret type changed outside keyrotor, keeping the key', async () => {
    await start();
    await createApiKey(kc, namespace, 'drift');
    const { status } = await waitForReady(kc, namespace, 'drift');
    // Removing the managed-by label takes the Secret out of keyrotor's watch: it must still notice.
    await core.patchNamespacedSecret(
      { namespace, name: 'drift', body: { metadata: { labels: { 'app.kubernetes.io/managed-by': null } } } },
      mergePatch,
    );
    await waitFor(
      async () =>
        (await readSecret('drift')).metadata?.labels?.['app.kubernetes.io/managed-by'] === 'keyrotor'
          ? true
          : undefined,
      { description: 'the managed-by label to be restored' },
    );
    expect((await waitForEvent(kc, namespace, 'drift', 'SecretDrifted')).note).toContain('labels');

    // The type is immutable: someone recreated the Secret as Opaque, keeping its content, while the
    // operator was down (with it running, it would recreate the deleted Secret first).
    await operator?.stop();
    const current = await readSecret('drift');
    await core.deleteNamespacedSecret({ namespace, name: 'drift' });
    const copy: V1Secret = {
      metadata: {
        name: 'drift',
        labels: current.metadata?.labels ?? {},
        annotations: current.metadata?.annotations ?? {},
        ownerReferences: current.metadata?.ownerReferences ?? [],
      },
      type: 'Opaque',
      data: current.data ?? {},
    };
    await core.createNamespacedSecret({ namespace, body: copy });
    operator = await startOperator(kc, namespace);
    await waitFor(
      async () => ((await readSecret('drift')).type === 'keyrotor.dev/api-key' ? true : undefined),
      {
        description: 'the Secret type to be restored',
      },
    );
    expect(secretValue(await readSecret('drift'), 'key-id')).toBe(status?.keyId);
    expect((await readApiKey(kc, namespace, 'drift')).status?.keyId).toBe(status?.keyId);
  });

  it('refuses bad input the schema cannot catch with InvalidSpec, keeps the key, and does not spin', async () => {
    const running = await start();
    await createApiKey(kc, namespace, 'bad-template');
    const before = await waitForReady(kc, namespace, 'bad-template');
    await patchApiKey('bad-template', {
      spec: { secretTemplate: { labels: { team: 'not a valid label value!' } } },
    });
    const refused = await waitForReady(kc, namespace, 'bad-template', {
      status: 'False',
      reason: 'InvalidSpec',
    });
    expect(refused.status?.conditions?.[0]?.message).toContain('secretTemplate.labels: the value of "team"');
    expect(refused.status?.keyId).toBe(before.status?.keyId);
    expect(secretValue(await readSecret('bad-template'), 'key-id')).toBe(before.status?.keyId);
    expect((await waitForEvent(kc, namespace, 'bad-template', 'InvalidSpec')).type).toBe('Warning');

    // Looking again (a resync) changes nothing and writes nothing: no hot loop.
    await running.controller.idle();
    const writes = writeCount(running.requests);
    running.controller.resyncNow();
    await running.controller.idle();
    expect(writeCount(running.requests)).toBe(writes);
    expect(
      (await eventsFor(kc, namespace, 'bad-template')).filter((event) => event.reason === 'InvalidSpec'),
    ).toHaveLength(1);

    await patchApiKey('bad-template', { spec: { secretTemplate: { labels: { team: 'quant' } } } });
    const fixed = await waitForReady(kc, namespace, 'bad-template');
    expect(fixed.status?.keyId).toBe(before.status?.keyId);
  });

  it('restarts over existing keys without issuing a key or writing anything', async () => {
    const first = await start();
    await Promise.all(
      ['restart-a', 'restart-b', 'restart-c'].map((name) => createApiKey(kc, namespace, name)),
    );
    await Promise.all(
      ['restart-a', 'restart-b', 'restart-c'].map((name) => waitForReady(kc, namespace, name)),
    );
    await first.controller.idle();
    await first.stop();
    const versions = async () =>
      Promise.all(
        ['restart-a', 'restart-b', 'restart-c'].flatMap((name) => [
          readApiKey(kc, namespace, name).then((k) => k.metadata.resourceVersion),
          readSecret(name).then((s) => s.metadata?.resourceVersion),
        ]),
      );
    const before = await versions();

    operator = await startOperator(kc, namespace);
    await operator.controller.idle();
    expect(writeCount(operator.requests)).toBe(0);
    expect(await versions()).toEqual(before);
  });

  it('relists everything and looks at every key again without writing anything', async () => {
    const running = await start();
    await Promise.all(['relist-a', 'relist-b'].map((name) => createApiKey(kc, namespace, name)));
    await Promise.all(['relist-a', 'relist-b'].map((name) => waitForReady(kc, namespace, name)));
    await running.controller.idle();
    const writes = writeCount(running.requests);
    const lists = running.requests.get('GET') ?? 0;
    await running.controller.relist();
    await running.controller.idle();
    expect(running.requests.get('GET') ?? 0).toBeGreaterThanOrEqual(lists + 2);
    expect(writeCount(running.requests)).toBe(writes);
    // Every informer once: the ApiKey controller's, the readers controller's, the workloads controller's
    // (Rollouts too while another test file has their CRD installed).
    const relisted = running.logLines
      .filter((line) => line.includes('"msg":"relisted"'))
      .map((line) => (JSON.parse(line) as { informer: string }).informer.replace(/ in .*$/, ''));
    const everyInformer = ['apikeys', 'secrets', 'apikeyissuers', 'namespaces', 'roles', 'rolebindings'];
    everyInformer.push('apikeyreaders', 'deployments', 'statefulsets', 'daemonsets');
    expect(relisted.filter((name) => name !== 'rollouts').sort()).toEqual(everyInformer.sort());
  });

  it('relists a watch that has been silent too long (the staleness watchdog), and keeps working', async () => {
    // The client reconnects a quiet watch about every 30 s; a second of silence counts as stale here.
    operator = await startOperator(kc, namespace, { staleAfterMs: 1_000 });
    const running = operator;
    // Found silent, logged, counted, and relisted.
    await waitFor(
      async () => {
        const metrics = await running.controller.metrics.registry.getSingleMetricAsString(
          'keyrotor_informer_transitions_total',
        );
        return /kind="stale"} [1-9]/.test(metrics) && /kind="relist"} [1-9]/.test(metrics) ? true : undefined;
      },
      { description: 'the watchdog to find a silent watch and relist it', timeoutMs: 20_000 },
    );
    expect(running.logLines.some((line) => line.includes('"msg":"watch silent too long; relisting"'))).toBe(
      true,
    );
    await createApiKey(kc, namespace, 'after-stale');
    await waitForReady(kc, namespace, 'after-stale');
  });

  it('keeps key material out of every log line, event and status through a whole lifecycle', async () => {
    const running = await start();
    const keys = new Set<string>();
    const remember = async () => {
      const key = secretValue(await readSecret('lifecycle'), 'api-key');
      if (key !== undefined) keys.add(key);
    };
    await createApiKey(kc, namespace, 'lifecycle', { secretTemplate: { labels: { team: 'quant' } } });
    let { status } = await waitForReady(kc, namespace, 'lifecycle');
    await remember();
    await patchApiKey('lifecycle', { spec: { environment: 'test' } }); // a new key format: reissued
    ({ status } = await waitForReady(kc, namespace, 'lifecycle', { keyIdNot: status?.keyId ?? '' }));
    await remember();
    await core.patchNamespacedSecret(
      { namespace, name: 'lifecycle', body: { stringData: { 'api-key': 'kr_test_x' } } },
      mergePatch,
    );
    ({ status } = await waitForReady(kc, namespace, 'lifecycle', { keyIdNot: status?.keyId ?? '' }));
    await remember();
    await core.deleteNamespacedSecret({ namespace, name: 'lifecycle' });
    await waitForReady(kc, namespace, 'lifecycle', { keyIdNot: status?.keyId ?? '' });
    await remember();
    await running.controller.idle();

    expect(keys.size).toBe(4);
    const events = JSON.stringify(await eventsFor(kc, namespace, 'lifecycle'));
    const apiKey = JSON.stringify(await readApiKey(kc, namespace, 'lifecycle'));
    expect(running.logLines.length).toBeGreaterThan(4);
    for (const key of keys) {
      for (const line of running.logLines) expect(line).not.toContain(key);
      expect(events).not.toContain(key);
      expect(apiKey).not.toContain(key);
    }
  });
});
