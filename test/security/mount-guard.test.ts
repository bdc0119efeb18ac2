// The mount guard against a namespace user who may edit ConfigMaps and create Pods but not read
// Secrets (issue 16): its parameters are an ApiKeyReaders object the tenant cannot write, keyrotor repairs
// any edit of it at once, a missing object refuses every Pod where keys with readers live, and every
// way into a key (Pod, ephemeral container, init container, every workload kind's pod template, volume,
// projected volume, env, envFrom) is guarded. Pods that used a Secret before its key existed are reported.
import path from 'node:path';

import {
  AppsV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  GROUP,
  LABEL_MOUNT_GUARD,
  READERS_OBJECT_NAME,
  READERS_PLURAL,
  VERSION,
} from '../../operator/src/api/names.ts';
import { adminKubeConfig, createTestNamespace, failureStatus, statusCode } from '../support/kube.ts';
import {
  createApiKey,
  readApiKey,
  startOperator,
  waitForEvent,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { guardEntries, readGuard } from '../support/readers.ts';
import { can, createTenant, type Tenant } from '../support/tenant.ts';
import { tool } from '../support/tools.ts';
import { waitFor } from '../support/wait.ts';

const policies = path.resolve(import.meta.dirname, '../../policies');
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A pod spec that reads `secret` through an env secretKeyRef, as `serviceAccountName`. */
const envSpec = (serviceAccountName: string, secret: string, restartPolicy?: string): V1PodSpec => ({
  serviceAccountName,
  ...(restartPolicy === undefined ? {} : { restartPolicy }),
  containers: [
    {
      name: 'app',
      image: 'app:1',
      env: [{ name: 'API_KEY', valueFrom: { secretKeyRef: { name: secret, key: 'api-key' } } }],
    },
  ],
});
const template = (spec: V1PodSpec) => ({ metadata: { labels: { app: 'x' } }, spec });

/** The HTTP status a create answers with: 201 when admitted. */
async function answer(create: Promise<unknown>): Promise<number> {
  try {
    await create;
    return 201;
  } catch (error) {
    return statusCode(error) ?? 0;
  }
}

describe('the mount guard holds against namespace users', () => {
  const admin = adminKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const custom = admin.makeApiClient(CustomObjectsApi);
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};
  let operator: TestOperator | undefined;
  let tenant: Tenant;
  let tenantCore: CoreV1Api;

  /** The HTTP status of a dry-run create of a Pod with this spec, as the tenant (201: admitted). */
  const podStatus = (spec: V1PodSpec, name = 'probe'): Promise<number> =>
    answer(tenantCore.createNamespacedPod({ namespace, body: { metadata: { name }, spec }, dryRun: 'All' }));

  beforeAll(async () => {
    const applied = await tool('kubectl', [
      'apply', '-f', path.join(policies, 'readers-policy.yaml'), '-f', path.join(policies, 'bindings.yaml'),
    ]); // prettier-ignore
    expect(applied.stderr).not.toContain('error');
    const created = await createTestNamespace(admin, 'mount-guard');
    namespace = created.name;
    removeNamespace = created.remove;
    tenant = await createTenant(admin, namespace);
    tenantCore = tenant.kc.makeApiClient(CoreV1Api);
    for (const name of ['bot', 'intruder'])
      await tenantCore.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    // A Pod that names the Secret before its key exists, as a ServiceAccount that will not be a reader.
    await tenantCore.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'early-bird' }, spec: envSpec('intruder', 'trading') },
    });
    operator = await startOperator(admin, namespace);
    await createApiKey(tenant.kc, namespace, 'trading', { readers: { serviceAccounts: ['bot'] } });
    await waitForReady(admin, namespace, 'trading');
    await waitFor(
      async () => ((await podStatus(envSpec('intruder', 'trading'))) === 403 ? true : undefined),
      {
        description: 'the mount policy to take effect',
      },
    );
  });
  afterAll(async () => {
    await operator?.stop();
    await removeNamespace();
  });

  it('keeps the guard in an object no namespace user may write, not even one bound to the built-in admin role', async () => {
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'ns-admin' } } });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'ns-admin' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'ns-admin', namespace }],
      },
    });
    const reviews = admin.makeApiClient(AuthorizationV1Api);
    for (const verb of ['create', 'update', 'patch', 'delete']) {
      expect
        .soft(await can(tenant, verb, GROUP, READERS_PLURAL, READERS_OBJECT_NAME), `the tenant may ${verb}`)
        .toBe(false);
      const review = await reviews.createSubjectAccessReview({
        body: {
          spec: {
            user: `system:serviceaccount:${namespace}:ns-admin`,
            resourceAttributes: {
              namespace,
              verb,
              group: GROUP,
              resource: READERS_PLURAL,
              name: READERS_OBJECT_NAME,
            },
          },
        },
      });
      expect.soft(review.status?.allowed ?? false, `the namespace admin may ${verb}`).toBe(false);
    }
    const deleted = await failureStatus(
      tenant.kc.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: READERS_PLURAL,
        name: READERS_OBJECT_NAME,
      }),
    );
    expect(deleted.code).toBe(403);
  });

  it('refuses every Pod while the object is missing, and keyrotor puts it back at once', async () => {
    // keyrotor stopped, so that the missing object is seen for sure (running, it puts it back in ms).
    await operator?.stop();
    operator = undefined;
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: READERS_PLURAL,
      name: READERS_OBJECT_NAME,
    });
    const plain: V1PodSpec = { serviceAccountName: 'bot', containers: [{ name: 'app', image: 'app:1' }] };
    // The guarded binding (parameterNotFoundAction: Deny) refuses every Pod of the labelled namespace:
    // the API server answers 422 (no parameters), or 403 while the deletion has not reached its cache.
    await waitFor(async () => ((await podStatus(plain)) === 422 ? true : undefined), {
      description: 'the missing parameters to refuse Pods',
    });
    expect(await podStatus(envSpec('bot', 'trading'))).toBe(422);
    expect(await podStatus(envSpec('intruder', 'trading'))).not.toBe(201);

    operator = await startOperator(admin, namespace);
    await waitFor(
      async () => ((await guardEntries(admin, namespace)).trading === 'trading;bot' ? true : undefined),
      { description: 'keyrotor to restore the ApiKeyReaders object' },
    );
    await waitFor(async () => ((await podStatus(envSpec('bot', 'trading'))) === 201 ? true : undefined), {
      description: 'the restored parameters to admit the reader',
    });
    expect(await podStatus(plain)).toBe(201);
    expect(await podStatus(envSpec('intruder', 'trading'))).toBe(403);
  });

  it('repairs an edit that adds a ServiceAccount, and puts back a removed namespace label', async () => {
    const guard = await readGuard(admin, namespace);
    await custom.replaceNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: READERS_PLURAL,
      name: READERS_OBJECT_NAME,
      body: {
        ...guard,
        spec: {
          secrets: [{ secretName: 'trading', apiKey: 'trading', serviceAccounts: ['bot', 'intruder'] }],
        },
      },
    });
    await waitFor(
      async () => ((await guardEntries(admin, namespace)).trading === 'trading;bot' ? true : undefined),
      {
        description: 'keyrotor to repair the edited entry',
      },
    );
    expect(await podStatus(envSpec('intruder', 'trading'))).toBe(403);

    await core.patchNamespace(
      { name: namespace, body: { metadata: { labels: { [LABEL_MOUNT_GUARD]: null } } } },
      mergePatch,
    );
    await waitFor(
      async () =>
        (await core.readNamespace({ name: namespace })).metadata?.labels?.[LABEL_MOUNT_GUARD] === 'enforced'
          ? true
          : undefined,
      { description: 'keyrotor to label the namespace again' },
    );
  });

  it('guards every way into the key: volumes, projected volumes, driver secretRefs, imagePullSecrets, envFrom, init and ephemeral containers', async () => {
    const container = { name: 'app', image: 'app:1' };
    const specs: Record<string, V1PodSpec> = {
      volume: {
        serviceAccountName: 'intruder',
        containers: [container],
        volumes: [{ name: 'k', secret: { secretName: 'trading' } }],
      },
      projected: {
        serviceAccountName: 'intruder',
        containers: [container],
        volumes: [{ name: 'k', projected: { sources: [{ secret: { name: 'trading' } }] } }],
      },
      envFrom: {
        serviceAccountName: 'intruder',
        containers: [{ ...container, envFrom: [{ secretRef: { name: 'trading' } }] }],
      },
      initContainer: {
        serviceAccountName: 'intruder',
        containers: [container],
        initContainers: [{ ...container, name: 'init', envFrom: [{ secretRef: { name: 'trading' } }] }],
      },
      defaultServiceAccount: {
        containers: [{ ...container, envFrom: [{ secretRef: { name: 'trading' } }] }],
      },
      csiNodePublishSecret: {
        serviceAccountName: 'intruder',
        containers: [container],
        volumes: [{ name: 'k', csi: { driver: 'x.example.com', nodePublishSecretRef: { name: 'trading' } } }],
      },
      flexVolumeSecret: {
        serviceAccountName: 'intruder',
        containers: [container],
        volumes: [{ name: 'k', flexVolume: { driver: 'example/x', secretRef: { name: 'trading' } } }],
      },
      imagePullSecret: {
        serviceAccountName: 'intruder',
        containers: [container],
        imagePullSecrets: [{ name: 'trading' }],
      },
    };
    for (const [name, spec] of Object.entries(specs)) expect.soft(await podStatus(spec), name).toBe(403);

    // kubectl debug: an ephemeral container added to a running Pod that does not use the key.
    await tenantCore.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'plain' },
        spec: { serviceAccountName: 'intruder', containers: [container] },
      },
    });
    for (const [name, ephemeral] of Object.entries({
      env: { env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 'trading', key: 'api-key' } } }] },
      envFrom: { envFrom: [{ secretRef: { name: 'trading' } }] },
    })) {
      const pod = await tenantCore.readNamespacedPod({ namespace, name: 'plain' });
      const refused = await failureStatus(
        tenantCore.replaceNamespacedPodEphemeralcontainers({
          namespace,
          name: 'plain',
          body: Object.assign(pod, {
            spec: Object.assign(pod.spec ?? { containers: [] }, {
              ephemeralContainers: [{ name: `debug-${name.toLowerCase()}`, image: 'busybox', ...ephemeral }],
            }),
          }),
        }),
      );
      expect.soft(refused.code, `ephemeral container with ${name}`).toBe(403);
      expect.soft(refused.body).toContain('may not use Secret trading');
    }
  });

  it('guards the pod template of every workload kind, on create and on update', async () => {
    // The tenant may not create workloads; the admin stands in for a user who may: the policy is the same.
    const apps = admin.makeApiClient(AppsV1Api);
    const batch = admin.makeApiClient(BatchV1Api);
    const bad = template(envSpec('intruder', 'trading'));
    const job = { template: template(envSpec('intruder', 'trading', 'Never')) };
    const selector = { matchLabels: { app: 'x' } };
    const metadata = { name: 'w' };
    const dryRun = 'All';
    const creates: Record<string, () => Promise<unknown>> = {
      Deployment: () =>
        apps.createNamespacedDeployment({
          namespace,
          dryRun,
          body: { metadata, spec: { selector, template: bad } },
        }),
      StatefulSet: () =>
        apps.createNamespacedStatefulSet({
          namespace,
          dryRun,
          body: { metadata, spec: { selector, serviceName: 'w', template: bad } },
        }),
      DaemonSet: () =>
        apps.createNamespacedDaemonSet({
          namespace,
          dryRun,
          body: { metadata, spec: { selector, template: bad } },
        }),
      ReplicaSet: () =>
        apps.createNamespacedReplicaSet({
          namespace,
          dryRun,
          body: { metadata, spec: { selector, template: bad } },
        }),
      ReplicationController: () =>
        core.createNamespacedReplicationController({
          namespace,
          dryRun,
          body: { metadata, spec: { selector: { app: 'x' }, template: bad } },
        }),
      PodTemplate: () =>
        core.createNamespacedPodTemplate({ namespace, dryRun, body: { metadata, template: bad } }),
      Job: () => batch.createNamespacedJob({ namespace, dryRun, body: { metadata, spec: job } }),
      CronJob: () =>
        batch.createNamespacedCronJob({
          namespace,
          dryRun,
          body: { metadata, spec: { schedule: '0 * * * *', jobTemplate: { spec: job } } },
        }),
    };
    for (const [kind, create] of Object.entries(creates))
      expect.soft((await failureStatus(create())).code, kind).toBe(403);

    // An update that starts using the Secret is refused too.
    const harmless = template({
      serviceAccountName: 'intruder',
      containers: [{ name: 'app', image: 'app:1' }],
    });
    await apps.createNamespacedDeployment({
      namespace,
      body: { metadata: { name: 'later' }, spec: { selector, template: harmless } },
    });
    const updated = await failureStatus(
      apps.patchNamespacedDeployment(
        { namespace, name: 'later', body: { spec: { template: bad } } },
        mergePatch,
      ),
    );
    expect(updated.code).toBe(403);
  });

  it('reports Pods that used the Secret before its key existed: a MountGuard condition and a Warning naming them', async () => {
    await waitFor(
      async () => {
        const condition = (await readApiKey(admin, namespace, 'trading')).status?.conditions?.find(
          (c) => c.type === 'MountGuard',
        );
        return condition?.reason === 'UnlistedConsumers' ? condition : undefined;
      },
      { description: 'the MountGuard condition of trading' },
    ).then((condition) => {
      expect(condition.status).toBe('False');
      expect(condition.message).toContain('early-bird (ServiceAccount intruder)');
    });
    const event = await waitForEvent(admin, namespace, 'trading', 'UnlistedConsumers');
    expect(event.type).toBe('Warning');
    expect(event.note).toContain('early-bird');
  });

  it("cannot be turned on another team's Secret by an ApiKey that never gets past its checks", async () => {
    // Team B's own Secret, which keyrotor does not own, used by team B's Pod.
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'team-b-db' }, stringData: { password: 'not-a-real-password' } },
    });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'teamb' } } });
    expect(await podStatus(envSpec('teamb', 'team-b-db'))).toBe(201);
    // The tenant's squat: readers on that name, and an issuer that does not exist, so the ApiKey stops
    // before keyrotor looks at the Secret (it never becomes SecretConflict).
    await createApiKey(tenant.kc, namespace, 'squat', {
      secretName: 'team-b-db',
      issuerRef: { namespace, name: 'no-such-issuer' },
      readers: { serviceAccounts: ['bot'] },
    });
    await waitForReady(admin, namespace, 'squat', { status: 'False', reason: 'IssuerNotFound' });
    await operator?.controller.idle();
    expect(await guardEntries(admin, namespace)).not.toHaveProperty('team-b-db');
    expect(await podStatus(envSpec('teamb', 'team-b-db'))).toBe(201);
  });

  it('puts the guard in place before the key exists', async () => {
    await createApiKey(tenant.kc, namespace, 'fresh', { readers: { serviceAccounts: ['bot'] } });
    await waitForReady(admin, namespace, 'fresh');
    const secret = await core.readNamespacedSecret({ namespace, name: 'fresh' });
    const guard = await readGuard(admin, namespace);
    expect((await guardEntries(admin, namespace)).fresh).toBe('fresh;bot');
    // etcd's revisions order every write of the cluster, and nothing wrote the guard since: it was
    // written before the Secret was created.
    expect(Number(guard?.metadata.resourceVersion)).toBeLessThan(Number(secret.metadata?.resourceVersion));
  });
});

describe('a malformed guard entry', () => {
  const admin = adminKubeConfig();
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const created = await createTestNamespace(admin, 'guard-entry');
    namespace = created.name;
    removeNamespace = created.remove;
  });
  afterAll(async () => {
    await removeNamespace();
  });

  it('refuses only the Pods that use its Secret, never the whole namespace', async () => {
    const core = admin.makeApiClient(CoreV1Api);
    for (const name of ['bot', 'other'])
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    // No keyrotor watches this namespace: the object stays as written.
    await admin.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: READERS_PLURAL,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'ApiKeyReaders',
        metadata: { name: READERS_OBJECT_NAME },
        spec: { secrets: [{ secretName: 'good', serviceAccounts: ['bot'] }, { secretName: 'broken' }] },
      },
    });
    const status = (spec: V1PodSpec) =>
      answer(core.createNamespacedPod({ namespace, body: { metadata: { name: 'p' }, spec }, dryRun: 'All' }));
    await waitFor(async () => ((await status(envSpec('other', 'broken'))) === 403 ? true : undefined), {
      description: 'the policy to see the object',
    });
    expect(await status(envSpec('bot', 'broken'))).toBe(403);
    expect(await status(envSpec('bot', 'good'))).toBe(201);
    expect(await status({ serviceAccountName: 'other', containers: [{ name: 'app', image: 'app:1' }] })).toBe(
      201,
    );
  });
});
