// Scoped Secrets: only an ApiKey's readers may read its Secret (RBAC keyrotor keeps) or mount it (the
// admission policy in policies/), and keys stay in namespaces of their environment.
import path from 'node:path';

import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import {
  adminKubeConfig,
  createTestNamespace,
  createDeployment,
  failureStatus,
  rawRequest,
  tokenKubeConfig,
} from '../support/kube.ts';
import { createApiKey, startOperator, waitForReady, type TestOperator } from '../support/operator.ts';
import { tool } from '../support/tools.ts';
import { waitFor } from '../support/wait.ts';

const policies = path.resolve(import.meta.dirname, '../../policies');

describe('scoped Secrets', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  let namespace: string;
  const cleanups: (() => Promise<void>)[] = [];
  let operator: TestOperator;
  const tokens: Record<string, string> = {};

  const pod = (name: string, serviceAccountName: string, secret: string): V1Pod => ({
    metadata: { name },
    spec: {
      serviceAccountName,
      containers: [
        {
          name: 'app',
          image: 'app:1',
          env: [{ name: 'API_KEY', valueFrom: { secretKeyRef: { name: secret, key: 'api-key' } } }],
        },
      ],
    },
  });

  beforeAll(async () => {
    const applied = await tool('kubectl', [
      'apply', '-f', path.join(policies, 'readers-policy.yaml'), '-f', path.join(policies, 'environments-policy.yaml'), '-f', path.join(policies, 'bindings.yaml'),
    ]); // prettier-ignore
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const created = await createTestNamespace(kc, 'readers');
    namespace = created.name;
    cleanups.push(created.remove);
    operator = await startOperator(kc, namespace);
    for (const name of ['bot', 'intruder', 'auditor']) {
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
      const request = await core.createNamespacedServiceAccountToken({
        namespace,
        name,
        body: { spec: { expirationSeconds: 3600, audiences: [] } },
      });
      tokens[name] = request.status?.token ?? '';
    }
    await createApiKey(kc, namespace, 'trading', { readers: { serviceAccounts: ['bot'] } });
    await createApiKey(kc, namespace, 'reporting', { readers: { serviceAccounts: ['auditor'] } });
    await createApiKey(kc, namespace, 'open');
    for (const name of ['trading', 'reporting', 'open']) await waitForReady(kc, namespace, name);
    // The policy only acts once keyrotor's ApiKeyReaders object is there and the bindings have reached the API server.
    await waitFor(
      async () => {
        const response = await failureStatus(
          core.createNamespacedPod({ namespace, body: pod('probe', 'intruder', 'trading'), dryRun: 'All' }),
        ).catch(() => undefined);
        return response?.code === 403 ? true : undefined;
      },
      { description: 'the mount policy to take effect' },
    );
  });
  afterAll(async () => {
    await operator.stop();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const asServiceAccount = (name: string) => tokenKubeConfig(kc, tokens[name] ?? '').makeApiClient(CoreV1Api);

  it('keeps a Role and RoleBinding, owned by the ApiKey, for exactly its readers and its Secret', async () => {
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const role = await rbac.readNamespacedRole({ namespace, name: 'keyrotor:trading:readers' });
    expect(role.rules).toEqual([
      expect.objectContaining({
        resources: ['secrets'],
        resourceNames: ['trading'],
        verbs: ['get', 'watch'],
      }),
    ]);
    expect(role.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'ApiKey',
      name: 'trading',
      controller: true,
    });
    const binding = await rbac.readNamespacedRoleBinding({ namespace, name: 'keyrotor:trading:readers' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'bot', namespace }]);
    await expect(rbac.readNamespacedRole({ namespace, name: 'keyrotor:open:readers' })).rejects.toMatchObject(
      { code: 404 },
    );
  });

  it('lets a listed ServiceAccount get and watch its key, and nothing else', async () => {
    const bot = asServiceAccount('bot');
    expect((await bot.readNamespacedSecret({ namespace, name: 'trading' })).metadata?.name).toBe('trading');
    const watch = await rawRequest(
      tokenKubeConfig(kc, tokens.bot ?? ''),
      'GET',
      `/api/v1/namespaces/${namespace}/secrets?watch=1&fieldSelector=metadata.name%3Dtrading&timeoutSeconds=1`,
    );
    expect(watch.status).toBe(200);
    expect((await failureStatus(bot.listNamespacedSecret({ namespace }))).code).toBe(403);
    expect((await failureStatus(bot.readNamespacedSecret({ namespace, name: 'reporting' }))).code).toBe(403);
    expect(
      (await failureStatus(asServiceAccount('intruder').readNamespacedSecret({ namespace, name: 'trading' })))
        .code,
    ).toBe(403);
  });

  it('refuses a Pod or Deployment that uses the Secret as a ServiceAccount that is not a reader, saying what to do', async () => {
    const refused = await failureStatus(
      core.createNamespacedPod({ namespace, body: pod('sneaky', 'intruder', 'trading') }),
    );
    expect(refused.code).toBe(403);
    expect(refused.body).toContain('ServiceAccount intruder may not use Secret trading');
    expect(refused.body).toContain('ApiKey trading');
    expect(refused.body).toContain('spec.readers.serviceAccounts lists only bot');

    const deployment = await failureStatus(
      createDeployment(kc, namespace, 'sneaky', {
        serviceAccountName: 'intruder',
        volumes: [{ name: 'key', projected: { sources: [{ secret: { name: 'trading' } }] } }],
        containers: [{ name: 'app', image: 'app:1', volumeMounts: [{ name: 'key', mountPath: '/keys' }] }],
      }),
    );
    expect(deployment.code).toBe(403);
    expect(deployment.body).toContain('ServiceAccount intruder may not use Secret trading');
  });

  it('admits the readers, and anyone for a key that lists no readers (Pods stay Pending: no kubelet)', async () => {
    // Admission is the create not throwing; the read-back shows both Pods were stored as asked.
    const admitted = await core.createNamespacedPod({ namespace, body: pod('allowed', 'bot', 'trading') });
    const open = await core.createNamespacedPod({ namespace, body: pod('open', 'intruder', 'open') });
    for (const [created, serviceAccount] of [
      [admitted, 'bot'],
      [open, 'intruder'],
    ] as const) {
      const stored = await core.readNamespacedPod({ namespace, name: created.metadata?.name ?? '' });
      expect(stored.metadata?.uid).toBe(created.metadata?.uid);
      expect(stored.spec?.serviceAccountName).toBe(serviceAccount);
    }
  });

  it('takes access away when a reader is removed from the list', async () => {
    await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: 'reporting',
        body: { spec: { readers: { serviceAccounts: ['bot'] } } },
      },
      mergePatch,
    );
    await waitFor(
      async () =>
        (
          await failureStatus(
            asServiceAccount('auditor').readNamespacedSecret({ namespace, name: 'reporting' }),
          )
        ).code === 403
          ? true
          : undefined,
      { description: 'the removed reader to lose access' },
    );
    expect(
      (await asServiceAccount('bot').readNamespacedSecret({ namespace, name: 'reporting' })).metadata?.name,
    ).toBe('reporting');
    await waitFor(
      async () => {
        const attempt = core.createNamespacedPod({
          namespace,
          body: pod('late', 'auditor', 'reporting'),
          dryRun: 'All',
        });
        return (await failureStatus(attempt).catch(() => undefined))?.code === 403 ? true : undefined;
      },
      { description: 'the mount policy to follow the new list' },
    );
  });

  it('refuses a production ApiKey in a namespace labelled for development', async () => {
    const created = await createTestNamespace(kc, 'readers-dev');
    cleanups.push(created.remove);
    await core.patchNamespace(
      { name: created.name, body: { metadata: { labels: { 'keyrotor.dev/environment': 'development' } } } },
      mergePatch,
    );
    const refused = await failureStatus(
      createApiKey(kc, created.name, 'prod-key', { environment: 'production' }),
    );
    expect(refused.code).toBe(403);
    expect(refused.body).toContain(
      `a production ApiKey cannot be created in namespace ${created.name}, which is labelled keyrotor.dev/environment=development`,
    );
    await createApiKey(kc, created.name, 'dev-key', { environment: 'development' });
  });
});
