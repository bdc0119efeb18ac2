// The verifier Secret against the people who can touch it: the API team deletes or edits it, a
// tenant deletes and revokes its ApiKeys, fills the verifier past its size limit. Whatever they do,
// the verifier is back within seconds, every document parses, and keys that must stop working leave
// it within seconds. Tenants act only with their own token (test/support/tenant.ts).
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Secret,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { GROUP, ISSUER_PLURAL, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKey, ApiKeyIssuer, ApiKeySpec } from '../../operator/src/api/types.ts';
import type { ControllerOptions } from '../../operator/src/controller/controller.ts';
import { ResilientInformer, type Change } from '../../operator/src/kube/informer.ts';
import { createLogger } from '../../operator/src/observability/logger.ts';
import {
  VERIFIER_FILE,
  parseVerifierDocument,
  type VerifierDocument,
} from '../../operator/src/verify/document.ts';
import { adminKubeConfig, createTestNamespace, statusCode } from '../support/kube.ts';
import {
  createApiKey,
  createIssuer,
  startOperator,
  waitForAllReady,
  readIssuer,
  waitForIssuer,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';
import { waitFor } from '../support/wait.ts';

const CLIENT_LABEL = 'keyrotor.dev/prices-client';
const VERIFIER = 'prices-verifier';
/** How long a repair or a removal may take. */
const SECONDS_5 = 5_000;

interface WatchEvent<T> {
  readonly type: string;
  readonly object: T;
}

/** Every event of a watch, in order, until stop(). */
async function watchEvents<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  onEvent?: (event: WatchEvent<T>) => void,
) {
  const events: WatchEvent<T>[] = [];
  const request = await new Watch(kc).watch(
    path,
    {},
    (type: string, object: T) => {
      const event = { type, object };
      events.push(event);
      onEvent?.(event);
    },
    () => undefined,
  );
  return {
    events,
    stop: () => {
      request.abort();
    },
  };
}

const ready = (object: { status?: { conditions?: { type: string; status: string; reason?: string }[] } }) =>
  object.status?.conditions?.find((condition) => condition.type === 'Ready');

describe('verifier availability', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  let apiNamespace: string;
  let clientNamespace: string;
  let tenant: Tenant;
  const removals: (() => Promise<void>)[] = [];
  const stops: (() => void)[] = [];
  let operator: TestOperator | undefined;

  beforeEach(async () => {
    for (const prefix of ['prices-api', 'prices-client']) {
      const created = await createTestNamespace(kc, prefix);
      removals.push(created.remove);
      if (prefix === 'prices-api') apiNamespace = created.name;
      else clientNamespace = created.name;
    }
    await core.patchNamespace(
      { name: clientNamespace, body: { metadata: { labels: { [CLIENT_LABEL]: 'true' } } } },
      mergePatch,
    );
    tenant = await createTenant(kc, clientNamespace);
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop();
    await operator?.stop();
    operator = undefined;
    await Promise.all(removals.splice(0).map((remove) => remove()));
  });

  /** keyrotor with the default verifier batch of 1 s, watching the API's and the client's namespace. */
  const start = async (overrides: Partial<ControllerOptions> = {}) => {
    operator = await startOperator(kc, clientNamespace, {
      namespaces: [apiNamespace, clientNamespace],
      ...overrides,
    });
    await createIssuer(kc, apiNamespace, 'prices', {
      scopes: ['prices:*'],
      namespaceSelector: { matchLabels: { [CLIENT_LABEL]: 'true' } },
    });
  };
  /** The tenant asks for a key of the issuer. */
  const tenantKey = (name: string, spec: Partial<ApiKeySpec> = {}) =>
    createApiKey(tenant.kc, clientNamespace, name, {
      scopes: ['prices:read'],
      expiresAfter: '1h',
      issuerRef: { namespace: apiNamespace, name: 'prices' },
      ...spec,
    });
  const tenantCustom = () => tenant.kc.makeApiClient(CustomObjectsApi);
  const tenantDelete = (name: string) =>
    tenantCustom().deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: clientNamespace,
      plural: PLURAL,
      name,
    });
  const tenantPatch = (name: string, body: object) =>
    tenantCustom().patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: clientNamespace, plural: PLURAL, name, body },
      mergePatch,
    );
  const readVerifierSecret = async (): Promise<V1Secret | undefined> =>
    core.readNamespacedSecret({ namespace: apiNamespace, name: VERIFIER }).catch((error: unknown) => {
      if (statusCode(error) === 404) return undefined;
      throw error;
    });
  /** The document in the Secret; throws if keyrotor's own reader refuses it. */
  const documentOf = (secret: V1Secret | undefined): VerifierDocument | undefined =>
    secret?.data?.[VERIFIER_FILE] === undefined
      ? undefined
      : parseVerifierDocument(Buffer.from(secret.data[VERIFIER_FILE], 'base64').toString('utf8'));
  const listedKeyIds = async () =>
    (documentOf(await readVerifierSecret())?.keys ?? []).map((entry) => entry.keyId).sort();
  const waitForListed = (accept: (ids: string[]) => boolean, description: string, timeoutMs = 30_000) =>
    waitFor(
      async () => {
        const ids = await listedKeyIds();
        return accept(ids) ? ids : undefined;
      },
      { description: `the verifier to list ${description}`, timeoutMs },
    );
  const keyIdOf = (apiKey: ApiKey) => apiKey.status?.keyId ?? '';

  it('(a) a verifier Secret deleted right after keyrotor wrote it is back within 5 s, listing the same keys', async () => {
    await start();
    const secretEvents: WatchEvent<V1Secret>[] = [];
    // The API team's tooling (a GitOps prune, say) deletes the Secret as soon as it appears.
    let deleting: Promise<unknown> | undefined;
    const secrets = await watchEvents<V1Secret>(kc, `/api/v1/namespaces/${apiNamespace}/secrets`, (event) => {
      secretEvents.push(event);
      const written = event.type === 'ADDED' || event.type === 'MODIFIED';
      if (deleting === undefined && written && event.object.metadata?.name === VERIFIER) {
        const keys = documentOf(event.object)?.keys ?? [];
        if (keys.length > 0)
          deleting = core.deleteNamespacedSecret({ namespace: apiNamespace, name: VERIFIER });
      }
    });
    stops.push(secrets.stop);
    const issuers = await watchEvents<ApiKeyIssuer>(
      kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${apiNamespace}/${ISSUER_PLURAL}`,
    );
    stops.push(issuers.stop);
    await tenantKey('bot');
    const keyId = keyIdOf(await waitForReady(kc, clientNamespace, 'bot'));
    await waitFor(() => deleting, { description: 'the verifier Secret to appear and be deleted' });
    await deleting;
    const deletion = await waitFor(
      () =>
        secretEvents.find((event) => event.type === 'DELETED' && event.object.metadata?.name === VERIFIER),
      { description: 'the deletion to be seen' },
    );
    const deletedDocument = documentOf(deletion.object);
    expect(deletedDocument?.keys.map((entry) => entry.keyId)).toEqual([keyId]);

    const restored = await waitFor(
      async () => {
        const secret = await readVerifierSecret();
        return secret === undefined ? undefined : secret;
      },
      { description: 'the verifier Secret to be restored', timeoutMs: SECONDS_5 },
    );
    const document = documentOf(restored);
    expect(document?.keys.map((entry) => entry.keyId)).toEqual([keyId]);
    expect(document?.revision).toBeGreaterThan(deletedDocument?.revision ?? 0);

    // Between the deletion and the restoration the issuer's status was never written as VerifierUpToDate
    // (etcd revisions order writes across objects on this API server).
    const recreated = await waitFor(
      () =>
        secretEvents.find(
          (event) =>
            event.type === 'ADDED' &&
            event.object.metadata?.name === VERIFIER &&
            Number(event.object.metadata.resourceVersion) > Number(deletion.object.metadata?.resourceVersion),
        ),
      { description: 'the re-creation to be seen' },
    );
    const from = Number(deletion.object.metadata?.resourceVersion);
    const to = Number(recreated.object.metadata?.resourceVersion);
    const claims = issuers.events.filter((event) => {
      const version = Number(event.object.metadata.resourceVersion);
      return version > from && version < to && ready(event.object)?.reason === 'VerifierUpToDate';
    });
    expect(claims).toEqual([]);
    const settled = await waitForIssuer(
      kc,
      apiNamespace,
      'prices',
      (issuer) => issuer.status?.verifierRevision === document?.revision,
      'the restored revision',
    );
    expect(ready(settled)).toMatchObject({ status: 'True', reason: 'VerifierUpToDate' });
  });

  it('(b) hand edits of the verifier are undone within 5 s: a forged key, a rolled-back revision, a relabel', async () => {
    await start();
    await tenantKey('bot');
    const keyId = keyIdOf(await waitForReady(kc, clientNamespace, 'bot'));
    await waitForListed((ids) => ids.join() === keyId, 'the key');
    const original = await readVerifierSecret();
    const written = documentOf(original);
    const edit = (document: object, pretty = false) =>
      core.patchNamespacedSecret(
        {
          namespace: apiNamespace,
          name: VERIFIER,
          body: {
            data: {
              [VERIFIER_FILE]: Buffer.from(
                JSON.stringify(document, undefined, pretty ? 2 : undefined),
              ).toString('base64'),
            },
          },
        },
        mergePatch,
      );
    const forged = { ...written?.keys[0], keyId: 'f'.repeat(16), sha256: 'f'.repeat(64) };
    await edit({ ...written, keys: [...(written?.keys ?? []), forged] });
    await waitForListed((ids) => ids.join() === keyId, 'only the real key again', SECONDS_5);

    // The same keys under an older revision, pretty-printed: parses to the same keys, but is not what
    // keyrotor wrote, and readers that refuse an older revision would stay on a stale document.
    const before = documentOf(await readVerifierSecret())?.revision ?? 0;
    await edit({ ...written, revision: 1 }, true);
    const repaired = await waitFor(
      async () => {
        const document = documentOf(await readVerifierSecret());
        return document !== undefined && document.revision > before ? document : undefined;
      },
      { description: 'the rolled-back revision to be rewritten above it', timeoutMs: SECONDS_5 },
    );
    expect(repaired.keys.map((entry) => entry.keyId)).toEqual([keyId]);

    // The issuer label pointed elsewhere: the Secret's owner still names the issuer, which repairs it.
    await core.patchNamespacedSecret(
      {
        namespace: apiNamespace,
        name: VERIFIER,
        body: { metadata: { labels: { 'keyrotor.dev/apikeyissuer': 'other' } } },
      },
      mergePatch,
    );
    await waitFor(
      async () => {
        const secret = await readVerifierSecret();
        return secret?.metadata?.labels?.['keyrotor.dev/apikeyissuer'] === 'prices' ? true : undefined;
      },
      { description: 'the issuer label to be restored', timeoutMs: SECONDS_5 },
    );
    expect(await listedKeyIds()).toEqual([keyId]);
  });

  it('(c) a tenant deleting its ApiKey takes its key out of the verifier within 5 s, even right after a status write', async () => {
    // A busy operator (10 requests a second): the reconcile that wrote a status is still writing its
    // readers' Role and RoleBinding when the deletion arrives.
    await start({ qps: 10, burst: 1 });
    // Delete the moment the tenant's watch sees the status keyrotor just wrote.
    const deletions = new Map<string, (apiKey: ApiKey) => boolean>();
    const deleted = new Map<string, Promise<unknown>>();
    const watch = await watchEvents<ApiKey>(
      tenant.kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${clientNamespace}/${PLURAL}`,
      (event) => {
        const name = event.object.metadata.name;
        const when = deletions.get(name);
        if (when !== undefined && !deleted.has(name) && when(event.object))
          deleted.set(name, tenantDelete(name));
      },
    );
    stops.push(watch.stop);

    await tenantKey('stays');
    const stays = keyIdOf(await waitForReady(kc, clientNamespace, 'stays'));
    // Deleted as soon as it is first Ready.
    deletions.set('first-ready', (apiKey) => ready(apiKey)?.status === 'True');
    await tenantKey('first-ready', { readers: { serviceAccounts: ['reader'] } });
    await waitFor(() => deleted.get('first-ready'), { description: 'first-ready to be deleted' });
    await deleted.get('first-ready');
    await tenantKey('after');
    const after = keyIdOf(await waitForReady(kc, clientNamespace, 'after'));
    await waitForListed(
      (ids) => ids.join() === [stays, after].sort().join(),
      'the two remaining keys, without the deleted one',
      SECONDS_5,
    );

    // Listed, then its spec is edited; deleted the moment keyrotor's status write for that edit shows.
    // The tenant first puts a finalizer of its own on the key's Secret, so the garbage collector
    // cannot delete it with the ApiKey: nothing but the ApiKey's deletion says the key must go.
    await waitForListed((ids) => ids.includes(after), 'the key to delete');
    const hold = (finalizers: string[] | null) =>
      core.patchNamespacedSecret(
        { namespace: clientNamespace, name: 'after', body: { metadata: { finalizers } } },
        mergePatch,
      );
    await tenant.kc.makeApiClient(CoreV1Api).patchNamespacedSecret(
      {
        namespace: clientNamespace,
        name: 'after',
        body: { metadata: { finalizers: ['tenant.example/hold'] } },
      },
      mergePatch,
    );
    removals.unshift(async () => {
      await hold(null).catch((error: unknown) => {
        if (statusCode(error) !== 404) throw error;
      });
    });
    const generation = (await waitForReady(kc, clientNamespace, 'after')).metadata.generation ?? 0;
    deletions.set(
      'after',
      (apiKey) =>
        (apiKey.metadata.generation ?? 0) > generation &&
        apiKey.status?.observedGeneration === apiKey.metadata.generation,
    );
    await tenantPatch('after', { spec: { readers: { serviceAccounts: ['reader'] } } });
    await waitFor(() => deleted.get('after'), { description: 'after to be deleted after its status write' });
    await deleted.get('after');
    await waitForListed((ids) => ids.join() === stays, 'only the key that stays', SECONDS_5);
    expect(
      (await core.readNamespacedSecret({ namespace: clientNamespace, name: 'after' })).metadata?.finalizers,
    ).toEqual(['tenant.example/hold']);
  });

  it('(d) a revoked key leaves a verifier the tenant filled past its size limit, while the issuer says VerifierTooLarge', async () => {
    const limit = 24 * 1024;
    await start({ verifierMaxBytes: limit });
    // 32 scopes of 63 characters: about 2.4 KB an entry, so some ten fit.
    const scopes = Array.from(
      { length: 32 },
      (_, index) => `prices:s${String(index).padStart(2, '0')}${'x'.repeat(53)}`,
    );
    const create = (from: number, to: number) =>
      Promise.all(
        Array.from({ length: to - from }, (_, index) => tenantKey(`filler-${from + index}`, { scopes })),
      );
    // Six keys fit and are listed; seven more fill the verifier past its limit.
    await create(0, 6);
    const first = await waitForAllReady(kc, clientNamespace, { count: 6 });
    const firstIds = first.map(keyIdOf).sort();
    await waitForListed((ids) => firstIds.every((id) => ids.includes(id)), 'the first six keys');
    await create(6, 13);
    await waitForAllReady(kc, clientNamespace, { count: 13 });
    await waitForIssuer(
      kc,
      apiNamespace,
      'prices',
      (issuer) => ready(issuer)?.reason === 'VerifierTooLarge',
      'Ready=False, VerifierTooLarge',
    );
    const secret = await readVerifierSecret();
    expect(Buffer.from(secret?.data?.[VERIFIER_FILE] ?? '', 'base64').length).toBeLessThanOrEqual(limit);
    const listed = documentOf(secret)?.keys ?? [];
    expect(listed.length).toBeLessThan(13);
    const victim = listed.find((entry) => entry.keyId === firstIds[0]);
    if (victim === undefined) throw new Error('the verifier no longer lists a key it listed');

    await tenantPatch(victim.consumer.name, { spec: { revoked: true } });
    await waitForListed((ids) => !ids.includes(victim.keyId), `no ${victim.keyId} once revoked`, SECONDS_5);
    // The status of the document without the revoked key: still too large, as keys are held back.
    const after = await waitFor(
      async () => {
        const revision = documentOf(await readVerifierSecret())?.revision;
        const issuer = await readIssuer(kc, apiNamespace, 'prices');
        return issuer.status?.verifierRevision === revision ? issuer : undefined;
      },
      { description: 'the issuer status to show the verifier without the revoked key' },
    );
    expect(ready(after)).toMatchObject({ status: 'False', reason: 'VerifierTooLarge' });
    expect(documentOf(await readVerifierSecret())?.keys.map((entry) => entry.keyId)).not.toContain(
      victim.keyId,
    );
  }, 120_000);

  it('a relist reports objects that vanished while the watch missed them', async () => {
    const configMaps = kc.makeApiClient(CoreV1Api);
    await configMaps.createNamespacedConfigMap({
      namespace: clientNamespace,
      body: { metadata: { name: 'gone' } },
    });
    const changes: [string, Change][] = [];
    // The watch selects nothing, so every change after the list is missed, as by a stuck watch.
    const informer = new ResilientInformer<V1ConfigMap & KubernetesObject>({
      name: 'configmaps',
      kc,
      logger: createLogger({ level: 'silent' }),
      path: `/api/v1/namespaces/${clientNamespace}/configmaps`,
      labelSelector: 'keyrotor.dev/never=selected',
      list: () => configMaps.listNamespacedConfigMap({ namespace: clientNamespace }),
      onChange: (object, change) => changes.push([object.metadata?.name ?? '', change]),
    });
    await informer.start();
    stops.push(() => void informer.stop());
    expect(informer.get(clientNamespace, 'gone')).toBeDefined();
    await configMaps.deleteNamespacedConfigMap({ namespace: clientNamespace, name: 'gone' });
    await waitFor(
      async () =>
        (await configMaps.listNamespacedConfigMap({ namespace: clientNamespace })).items.some(
          (item) => item.metadata?.name === 'gone',
        )
          ? undefined
          : true,
      { description: 'the ConfigMap to be gone' },
    );
    changes.splice(0);
    await informer.relist();
    expect(changes).toContainEqual(['gone', 'delete']);
    expect(informer.get(clientNamespace, 'gone')).toBeUndefined();
  });
});
