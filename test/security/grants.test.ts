// Grants follow ownership (security review C1): reader RBAC exists only for a Secret keyrotor owns for
// that ApiKey, and only while it holds a live key; the mount guard's entry (a restriction, never a
// grant) only for a Secret keyrotor owns or will create for it. A tenant who may create ApiKeys, but
// not read Secrets, must not get a Secret read, or a say over who mounts someone else's Secret.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, ISSUER_PLURAL, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKeySpec } from '../../operator/src/api/types.ts';
import { adminKubeConfig, createTestNamespace, statusCode } from '../support/kube.ts';
import {
  createApiKey,
  createIssuer,
  startOperator,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { guardEntries } from '../support/readers.ts';
import { createTenant, serviceAccountCan, type Tenant } from '../support/tenant.ts';
import { waitFor } from '../support/wait.ts';

describe('grants follow ownership', () => {
  const admin = adminKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const custom = admin.makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};
  let operator: TestOperator | undefined;
  let tenant: Tenant;
  let barriers = 0;

  beforeAll(async () => {
    const created = await createTestNamespace(admin, 'grants');
    namespace = created.name;
    removeNamespace = created.remove;
    operator = await startOperator(admin, namespace);
    tenant = await createTenant(admin, namespace);
    const tenantCore = tenant.kc.makeApiClient(CoreV1Api);
    for (const name of ['mine', 'app']) {
      await tenantCore.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    }
  });
  afterAll(async () => {
    await operator?.stop();
    await removeNamespace();
  });

  /** As the tenant: an ApiKey is all it takes to ask keyrotor for a grant. */
  const tenantApiKey = (name: string, spec: Partial<ApiKeySpec>) =>
    createApiKey(tenant.kc, namespace, name, spec);

  const patchApiKey = (name: string, body: object) =>
    tenant.kc
      .makeApiClient(CustomObjectsApi)
      .patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body },
        mergePatch,
      );

  /** The mount guard's parameters: Secret name -> "apiKey;readers"; empty when there are none. */
  const readersData = () => guardEntries(admin, namespace);

  /** Which of the ApiKey's reader Role and RoleBinding exist. */
  async function readerRbac(apiKey: string): Promise<{ role: boolean; binding: boolean }> {
    const name = `keyrotor:${apiKey}:readers`;
    const exists = (read: Promise<unknown>) =>
      read.then(
        () => true,
        (error: unknown) => {
          if (statusCode(error) === 404) return false;
          throw error;
        },
      );
    return {
      role: await exists(rbac.readNamespacedRole({ namespace, name })),
      binding: await exists(rbac.readNamespacedRoleBinding({ namespace, name })),
    };
  }

  /**
   * Waits until keyrotor has nothing left to do (every reconcile queued by what the test did has run),
   * then until the API server's RBAC authorizer has seen every Role and RoleBinding written so far: a
   * grant of our own, made after them, is authorized only once its Role and RoleBinding are in the
   * authorizer's caches, which take events in order. A SubjectAccessReview that says no after this
   * means no, not "not yet".
   */
  async function settled(): Promise<void> {
    await operator?.controller.idle();
    barriers += 1;
    const name = `barrier-${barriers}`;
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name },
        rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [name], verbs: ['get'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name: 'barrier', namespace }],
      },
    });
    await waitFor(
      async () => ((await serviceAccountCan(admin, namespace, 'barrier', 'get', name)) ? true : undefined),
      { description: `the RBAC authorizer to see ${name}` },
    );
  }

  /** Waits until `serviceAccount` may get and watch `secret`: a grant keyrotor made reached the authorizer. */
  async function waitForGrant(serviceAccount: string, secret: string): Promise<void> {
    await waitFor(
      async () =>
        (await serviceAccountCan(admin, namespace, serviceAccount, 'get', secret)) &&
        (await serviceAccountCan(admin, namespace, serviceAccount, 'watch', secret))
          ? true
          : undefined,
      { description: `ServiceAccount ${serviceAccount} to be granted Secret ${secret}` },
    );
  }

  /**
   * The grants of an ApiKey that must have none: no Secret read for its reader, no RBAC, no guard entry.
   * Soft assertions: a failure reports every grant that is there, not only the first.
   */
  async function expectNoGrant(apiKey: string, reader: string, secret: string): Promise<void> {
    expect
      .soft(await serviceAccountCan(admin, namespace, reader, 'get', secret), `${reader} may get ${secret}`)
      .toBe(false);
    expect
      .soft(
        await serviceAccountCan(admin, namespace, reader, 'watch', secret),
        `${reader} may watch ${secret}`,
      )
      .toBe(false);
    expect.soft(await readerRbac(apiKey), `Role and RoleBinding of ApiKey ${apiKey}`).toEqual({
      role: false,
      binding: false,
    });
  }

  it("grants nothing on someone else's Secret: SecretConflict gives the tenant's reader no read and no guard entry", async () => {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'db-creds' }, stringData: { password: 'not-a-real-password' } },
    });
    await tenantApiKey('zz', { secretName: 'db-creds', readers: { serviceAccounts: ['mine'] } });
    await waitForReady(admin, namespace, 'zz', { status: 'False', reason: 'SecretConflict' });
    await settled();
    await expectNoGrant('zz', 'mine', 'db-creds');
    expect(await readersData(), 'the mount guard').not.toHaveProperty('db-creds');
  });

  it("a second ApiKey naming another ApiKey's Secret conflicts, grants its readers nothing, and leaves the owner's guard entry", async () => {
    await tenantApiKey('owner', { secretName: 'shared', readers: { serviceAccounts: ['app'] } });
    await waitForReady(admin, namespace, 'owner');
    await waitForGrant('app', 'shared');
    await waitFor(async () => ((await readersData()).shared === 'owner;app' ? true : undefined), {
      description: "the owner's guard entry",
    });

    // Sorted after the owner by name: the last ApiKey by name used to win the entry.
    await tenantApiKey('zz-takeover', { secretName: 'shared', readers: { serviceAccounts: ['mine'] } });
    await waitForReady(admin, namespace, 'zz-takeover', { status: 'False', reason: 'SecretConflict' });
    await settled();
    expect
      .soft(await serviceAccountCan(admin, namespace, 'mine', 'get', 'shared'), 'mine may get shared')
      .toBe(false);
    expect.soft(await readerRbac('zz-takeover')).toEqual({ role: false, binding: false });
    expect.soft((await readersData()).shared).toBe('owner;app');
    expect
      .soft(await serviceAccountCan(admin, namespace, 'app', 'get', 'shared'), "the owner's reader")
      .toBe(true);
  });

  it('revoking an ApiKey removes its Role and RoleBinding; its Secret stays guarded', async () => {
    await tenantApiKey('to-revoke', { readers: { serviceAccounts: ['app'] } });
    await waitForReady(admin, namespace, 'to-revoke');
    await waitForGrant('app', 'to-revoke');
    await waitFor(async () => ((await readersData())['to-revoke'] === 'to-revoke;app' ? true : undefined), {
      description: 'the guard entry of to-revoke',
    });

    await patchApiKey('to-revoke', { spec: { revoked: true } });
    await waitForReady(admin, namespace, 'to-revoke', { status: 'False', reason: 'Revoked' });
    await settled();
    await expectNoGrant('to-revoke', 'app', 'to-revoke');
    // The guard only ever refuses: keeping it on a revoked key's (empty) Secret is the safe side.
    expect((await readersData())['to-revoke']).toBe('to-revoke;app');
  });

  it('an ApiKey whose issuer does not exist (IssuerNotFound) grants nothing', async () => {
    await tenantApiKey('refused', {
      issuerRef: { namespace, name: 'no-such-issuer' },
      readers: { serviceAccounts: ['mine'] },
    });
    await waitForReady(admin, namespace, 'refused', { status: 'False', reason: 'IssuerNotFound' });
    await settled();
    await expectNoGrant('refused', 'mine', 'refused');
  });

  it('an ApiKey its issuer stops permitting (NotPermitted) loses what it was granted', async () => {
    await createIssuer(admin, namespace, 'market', { scopes: ['prices:*'] });
    await tenantApiKey('permitted', {
      issuerRef: { namespace, name: 'market' },
      readers: { serviceAccounts: ['app'] },
    });
    await waitForReady(admin, namespace, 'permitted');
    await waitForGrant('app', 'permitted');

    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: ISSUER_PLURAL,
        name: 'market',
        body: { spec: { scopes: ['candles:read'] } },
      },
      mergePatch,
    );
    await waitForReady(admin, namespace, 'permitted', { status: 'False', reason: 'NotPermitted' });
    await settled();
    await expectNoGrant('permitted', 'app', 'permitted');
  });

  it('an ApiKey being deleted loses its grants at once, before the garbage collector removes them', async () => {
    const finalizer = 'test.keyrotor.dev/hold';
    await tenantApiKey('leaving', { readers: { serviceAccounts: ['app'] } });
    await waitForReady(admin, namespace, 'leaving');
    await waitForGrant('app', 'leaving');
    // A finalizer of someone else keeps the ApiKey, deleting, so its dependents are not collected yet.
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: 'leaving',
        body: { metadata: { finalizers: [finalizer] } },
      },
      mergePatch,
    );
    try {
      await custom.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: 'leaving',
      });
      // No status is written for a deleting ApiKey, so there is nothing to wait for but the grant going.
      await waitFor(
        async () => {
          const left = await readerRbac('leaving');
          return left.role || left.binding ? undefined : true;
        },
        { description: 'the Role and RoleBinding of the deleting ApiKey to be removed' },
      );
      await settled();
      await expectNoGrant('leaving', 'app', 'leaving');
    } finally {
      await custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: 'leaving',
          body: { metadata: { finalizers: null } },
        },
        mergePatch,
      );
    }
  });

  it('an ApiKey whose spec is invalid (InvalidSpec) keeps the key in its Secret, and its readers keep access', async () => {
    await tenantApiKey('kept', { readers: { serviceAccounts: ['app'] } });
    const issued = await waitForReady(admin, namespace, 'kept');
    await waitForGrant('app', 'kept');
    await waitFor(async () => ((await readersData()).kept === 'kept;app' ? true : undefined), {
      description: 'the guard entry of kept',
    });

    await patchApiKey('kept', { spec: { secretTemplate: { labels: { team: 'quant desk' } } } });
    const invalid = await waitForReady(admin, namespace, 'kept', { status: 'False', reason: 'InvalidSpec' });
    expect(invalid.status?.keyId).toBe(issued.status?.keyId);
    await settled();
    expect(await serviceAccountCan(admin, namespace, 'app', 'get', 'kept')).toBe(true);
    expect(await readerRbac('kept')).toEqual({ role: true, binding: true });
    expect((await readersData()).kept).toBe('kept;app');
  });
});
