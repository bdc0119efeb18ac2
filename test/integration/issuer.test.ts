// ApiKeyIssuers against the real API server: who may get keys for an API, and the verifier Secret the
// API checks keys against. The operator's clock is moved forward instead of waiting for rotations.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { GROUP, ISSUER_PLURAL, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKeyIssuerSpec, ApiKeySpec } from '../../operator/src/api/types.ts';
import { formatKey, keyHash } from '../../operator/src/keys/format.ts';
import {
  VERIFIER_FILE,
  parseVerifierDocument,
  type VerifierDocument,
} from '../../operator/src/verify/document.ts';
import { verifierEntry } from '../../operator/src/verify/entry.testing.ts';
import { followVerifier } from '../../operator/src/verify/follow.ts';
import { writeSecretVolume } from '../../operator/src/verify/secret-volume.testing.ts';
import {
  adminKubeConfig,
  createTestNamespace,
  failureStatus,
  statusCode,
  writeFreeze,
} from '../support/kube.ts';
import {
  createApiKey,
  createIssuer as createIssuerIn,
  eventsFor,
  readApiKey,
  secretValue,
  startOperator,
  waitForEvent,
  waitForIssuer,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { waitFor } from '../support/wait.ts';

const MINUTE = 60_000;
const CLIENT_LABEL = 'keyrotor.dev/prices-client';
/** An issuer with every rule set. */
const STRICT: ApiKeyIssuerSpec = {
  scopes: ['prices:*'],
  environments: ['production'],
  maxExpiresAfter: '2h',
  requireSchedule: true,
};

/**
 * The verifier Secret's document as stored (base64 in data), not as parsed (the parser keeps unknown
 * fields): no field beyond the schema's, and the key in no encoding, anywhere in the Secret.
 */
function expectOnlyItsHash(secret: V1Secret | undefined, key: string): void {
  const stored = Buffer.from(secret?.data?.[VERIFIER_FILE] ?? '', 'base64').toString('utf8');
  const raw = JSON.parse(stored) as { keys: Record<string, unknown>[] } & Record<string, unknown>;
  expect(Object.keys(raw).sort()).toEqual(['apiVersion', 'issuer', 'keys', 'revision']);
  expect(raw.keys).toHaveLength(1);
  for (const entry of raw.keys) {
    expect(Object.keys(entry).sort()).toEqual(Object.keys(verifierEntry(key, 0)).sort());
    expect(Object.keys(entry.consumer as object).sort()).toEqual(['name', 'namespace']);
  }
  const body = key.slice(key.lastIndexOf('_') + 1);
  const encodings = [key, body, Buffer.from(key).toString('base64'), Buffer.from(key).toString('hex')];
  const decodedData = Object.values(secret?.data ?? {}).map((value) =>
    Buffer.from(value, 'base64').toString('utf8'),
  );
  expect(decodedData).toContain(stored);
  for (const text of [JSON.stringify(secret), ...decodedData]) {
    for (const encoding of encodings) expect(text).not.toContain(encoding);
  }
}

describe('ApiKeyIssuer', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  let apiNamespace: string;
  let clientNamespace: string;
  let otherNamespace: string;
  const removals: (() => Promise<void>)[] = [];
  let operator: TestOperator | undefined;
  let offsetMs = 0;
  const clock = () => new Date(Date.now() + offsetMs);

  beforeEach(async () => {
    offsetMs = 0;
    for (const prefix of ['prices-api', 'prices-client', 'other-team']) {
      const created = await createTestNamespace(kc, prefix);
      removals.push(created.remove);
      if (prefix === 'prices-api') apiNamespace = created.name;
      else if (prefix === 'prices-client') clientNamespace = created.name;
      else otherNamespace = created.name;
    }
    await labelNamespace(clientNamespace, { [CLIENT_LABEL]: 'true' });
  });
  afterEach(async () => {
    await operator?.stop();
    operator = undefined;
    await Promise.all(removals.splice(0).map((remove) => remove()));
  });

  const start = async (verifierBatchMs = 200) => {
    operator = await startOperator(kc, clientNamespace, {
      namespaces: [apiNamespace, clientNamespace, otherNamespace],
      now: clock,
      verifierBatchMs,
    });
    return operator;
  };
  const advance = async (ms: number) => {
    offsetMs += ms;
    operator?.controller.resyncNow();
    await operator?.controller.idle();
  };
  const labelNamespace = (name: string, labels: Record<string, string | null>) =>
    core.patchNamespace({ name, body: { metadata: { labels } } }, mergePatch);
  const createIssuer = (spec: ApiKeyIssuerSpec) =>
    createIssuerIn(kc, apiNamespace, 'prices', {
      namespaceSelector: { matchLabels: { [CLIENT_LABEL]: 'true' } },
      ...spec,
    });
  const patchIssuer = (body: object, name = 'prices') =>
    custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: apiNamespace, plural: ISSUER_PLURAL, name, body },
      mergePatch,
    );
  const patchApiKey = (name: string, body: object, namespace = clientNamespace) =>
    custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body },
      mergePatch,
    );
  const keyFor = (name: string, spec: Partial<ApiKeySpec> = {}, namespace = clientNamespace) =>
    createApiKey(kc, namespace, name, {
      scopes: ['prices:read'],
      expiresAfter: '1h',
      rotation: { rotateBefore: '20m', gracePeriod: '10m' },
      issuerRef: { namespace: apiNamespace, name: 'prices' },
      ...spec,
    });
  const readVerifierSecret = async (): Promise<V1Secret | undefined> =>
    core
      .readNamespacedSecret({ namespace: apiNamespace, name: 'prices-verifier' })
      .catch((error: unknown) => {
        if (statusCode(error) === 404) return undefined;
        throw error;
      });
  const documentOf = (secret: V1Secret | undefined): VerifierDocument | undefined =>
    secret?.data?.[VERIFIER_FILE] === undefined
      ? undefined
      : parseVerifierDocument(Buffer.from(secret.data[VERIFIER_FILE], 'base64').toString('utf8'));
  const listedKeyIds = async () =>
    (documentOf(await readVerifierSecret())?.keys ?? []).map((entry) => entry.keyId).sort();
  /** Waits until the verifier lists exactly `keyIds`. */
  const waitForListed = (keyIds: readonly string[], description: string, timeoutMs = 30_000) =>
    waitFor(
      async () => {
        const listed = await listedKeyIds();
        return JSON.stringify(listed) === JSON.stringify([...keyIds].sort()) ? listed : undefined;
      },
      { description: `the verifier to list ${description} (${keyIds.join(', ') || 'nothing'})`, timeoutMs },
    );
  const keyIn = async (name: string, field = 'api-key') =>
    secretValue(await core.readNamespacedSecret({ namespace: clientNamespace, name }), field) ?? '';

  it('admits a key every rule permits and lists its hash, and only its hash, in the verifier', async () => {
    await start();
    await createIssuer(STRICT);
    await keyFor('bot', { rotation: { schedule: '0 * * * *', gracePeriod: '10m' } });
    const ready = await waitForReady(kc, clientNamespace, 'bot');
    const keyId = ready.status?.keyId ?? '';
    await waitForListed([keyId], 'the new key');

    const key = await keyIn('bot');
    const secret = await readVerifierSecret();
    const document = documentOf(secret);
    expect(document?.keys[0]).toMatchObject({
      keyId,
      sha256: keyHash(key),
      scopes: ['prices:read'],
      environment: 'production',
      notBefore: ready.status?.issuedAt,
      notAfter: ready.status?.expiresAt,
      consumer: { namespace: clientNamespace, name: 'bot' },
    });
    expect(secret?.type).toBe('keyrotor.dev/verifier');
    expectOnlyItsHash(secret, key);
    expect(secret?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ApiKeyIssuer', controller: true });
    const issuer = await waitForIssuer(
      kc,
      apiNamespace,
      'prices',
      (read) => read.status?.verifierRevision === document?.revision,
      'the status shows the verifier revision',
    );
    expect(issuer.status).toMatchObject({ activeKeys: 1, consumers: 1, refusedKeys: 0 });
    expect(issuer.status?.conditions?.[0]).toMatchObject({ status: 'True', reason: 'VerifierUpToDate' });

    // Someone slips a hash of their own into the verifier: keyrotor writes it back from the ApiKeys.
    const forged = formatKey(
      { prefix: 'kr', environment: 'production', bits: 256 },
      new Uint8Array(32).fill(9),
    );
    const tampered = { ...document, keys: [...(document?.keys ?? []), verifierEntry(forged, Date.now())] };
    await core.patchNamespacedSecret(
      {
        namespace: apiNamespace,
        name: 'prices-verifier',
        body: { data: { [VERIFIER_FILE]: Buffer.from(JSON.stringify(tampered)).toString('base64') } },
      },
      mergePatch,
    );
    await waitForListed([keyId], 'the forged hash to be gone again');
  });

  it('refuses bad issuers and issuerRefs at apply time, with messages a person understands', async () => {
    const rejection = async (request: Promise<unknown>) => {
      const { code, body } = await failureStatus(request);
      expect(code).toBe(422);
      return (JSON.parse(body) as { message: string }).message;
    };
    const message = await rejection(
      createIssuer({
        scopes: ['Prices:read', 'prices:r*'],
        maxExpiresAfter: '4000d',
        namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In' }] },
        verifierSecretName: 'Bad_Name',
      }),
    );
    expect(message).toContain('scope pattern "Prices:read" must look like resource:action or resource:*');
    expect(message).toContain('scope pattern "prices:r*" must look like');
    expect(message).toContain('maxExpiresAfter must be between 1h and 3650d');
    expect(message).toContain(
      'matchExpressions: In and NotIn need values; Exists and DoesNotExist take none',
    );
    expect(message).toContain('verifierSecretName "Bad_Name" is not a valid Secret name');
    expect(await rejection(createIssuer({ scopes: [] }))).toContain('spec.scopes');

    await createIssuer({ scopes: ['prices:*'] });
    expect(await rejection(patchIssuer({ spec: { verifierSecretName: 'elsewhere' } }))).toContain(
      'spec.verifierSecretName cannot be changed',
    );
    expect(
      await rejection(keyFor('bad-ref', { issuerRef: { namespace: 'Market_Data', name: 'prices' } })),
    ).toContain('issuerRef.namespace "Market_Data" is not a valid namespace name');
  });

  it('refuses a key by each rule of the issuer, naming the rule, and issues none of them', async () => {
    await start();
    await createIssuer(STRICT);
    const schedule = { schedule: '0 * * * *' };
    const cases: [string, string, Partial<ApiKeySpec>, string?][] = [
      ['other-namespace', 'namespaceSelector', { rotation: schedule }, otherNamespace],
      ['wrong-scope', 'scopes', { scopes: ['orders:write'], rotation: schedule }],
      ['wrong-environment', 'environments', { environment: 'staging', rotation: schedule }],
      ['too-long', 'maxExpiresAfter', { expiresAfter: '3h', rotation: schedule }],
      ['no-schedule', 'requireSchedule', { rotation: { gracePeriod: '10m' } }],
    ];
    for (const [name, , spec, namespace] of cases) await keyFor(name, spec, namespace);
    for (const [name, rule, , namespace = clientNamespace] of cases) {
      const refused = await waitForReady(kc, namespace, name, { status: 'False', reason: 'NotPermitted' });
      const message = refused.status?.conditions?.[0]?.message ?? '';
      expect(message).toContain(`ApiKeyIssuer ${apiNamespace}/prices does not permit this key: [${rule}]`);
      const event = await waitForEvent(kc, namespace, name, 'NotPermitted');
      expect(event.type).toBe('Warning');
      expect(event.note).toContain(`[${rule}]`);
      expect(refused.status?.keyId).toBeUndefined();
      await expect(core.readNamespacedSecret({ namespace, name })).rejects.toSatisfy(
        (error: unknown) => statusCode(error) === 404,
      );
    }
    await waitForIssuer(
      kc,
      apiNamespace,
      'prices',
      (read) => read.status?.refusedKeys === 5,
      'five refused keys',
    );
    expect(await listedKeyIds()).toEqual([]);

    await keyFor('no-issuer', { issuerRef: { namespace: apiNamespace, name: 'absent' } });
    await waitForReady(kc, clientNamespace, 'no-issuer', { status: 'False', reason: 'IssuerNotFound' });
  });

  it('re-evaluates every key when the issuer or a namespace label changes, and keeps their Secrets', async () => {
    await start();
    await createIssuer({ scopes: ['prices:*', 'candles:read'] });
    await keyFor('prices-bot');
    await keyFor('candles-bot', { scopes: ['candles:read'] });
    const prices = (await waitForReady(kc, clientNamespace, 'prices-bot')).status?.keyId ?? '';
    const candles = (await waitForReady(kc, clientNamespace, 'candles-bot')).status?.keyId ?? '';
    await waitForListed([prices, candles], 'both keys');
    const key = await keyIn('candles-bot');

    await patchIssuer({ spec: { scopes: ['prices:*'] } });
    const refused = await waitForReady(kc, clientNamespace, 'candles-bot', {
      status: 'False',
      reason: 'NotPermitted',
    });
    expect(refused.status?.conditions?.[0]?.message).toContain('[scopes] "candles:read" is not among');
    expect(await listedKeyIds()).toEqual([prices]);
    expect(await keyIn('candles-bot')).toBe(key);

    await patchIssuer({ spec: { scopes: ['prices:*', 'candles:*'] } });
    await waitForReady(kc, clientNamespace, 'candles-bot');
    await waitForListed([prices, candles], 'the key again, unchanged');

    await labelNamespace(clientNamespace, { [CLIENT_LABEL]: null });
    await waitForReady(kc, clientNamespace, 'prices-bot', { status: 'False', reason: 'NotPermitted' });
    await waitForListed([], 'no key once the namespace is no longer selected');
  });

  it('lists both keys after a rotation until the grace period ends', async () => {
    await start();
    await createIssuer({ scopes: ['prices:*'] });
    await keyFor('bot');
    const first = await waitForReady(kc, clientNamespace, 'bot');
    const firstId = first.status?.keyId ?? '';
    await waitForListed([firstId], 'the first key');

    await advance(41 * MINUTE);
    const rotated = await waitForReady(kc, clientNamespace, 'bot', { keyIdNot: firstId });
    const secondId = rotated.status?.keyId ?? '';
    await waitForListed([firstId, secondId], 'both keys during the grace period');
    const previous = documentOf(await readVerifierSecret())?.keys.find((entry) => entry.keyId === firstId);
    expect(previous?.notAfter).toBe(rotated.status?.graceEndsAt);

    await advance(11 * MINUTE);
    await waitForListed([secondId], 'only the new key once the grace period ended');
  });

  it('removes a revoked key before its status says Revoked, and a deleted one at once', async () => {
    await start();
    await createIssuer({ scopes: ['prices:*'] });
    await keyFor('revoked');
    await keyFor('deleted');
    const revoked = (await waitForReady(kc, clientNamespace, 'revoked')).status?.keyId ?? '';
    const deleted = (await waitForReady(kc, clientNamespace, 'deleted')).status?.keyId ?? '';
    await waitForListed([revoked, deleted], 'both keys');
    // From here, anything batched waits 10 minutes: a removal seen within the usual 30 s wait cannot
    // have been batched, however slow the machine. (A new process lists what is there at once.)
    await operator?.stop();
    await start(600_000);

    await patchApiKey('revoked', { spec: { revoked: true, revocationReason: 'leaked in a log' } });
    const revokedKey = await waitForReady(kc, clientNamespace, 'revoked', {
      status: 'False',
      reason: 'Revoked',
    });
    const verifier = await readVerifierSecret();
    expect((documentOf(verifier)?.keys ?? []).map((entry) => entry.keyId)).toEqual([deleted]);
    // This API server's resourceVersions are etcd revisions, so they order writes: the verifier was
    // rewritten before the status said Revoked, not after.
    expect(Number(verifier?.metadata?.resourceVersion)).toBeLessThan(
      Number(revokedKey.metadata.resourceVersion),
    );

    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: clientNamespace,
      plural: PLURAL,
      name: 'deleted',
    });
    await waitForListed([], 'no key after the deletion');
  }, 90_000);

  it('revokes a key in its Secret even when its verifier cannot be written, and drops it from the verifier once it can', async () => {
    // The API server refuses writes to the verifier Secret, as an admission policy or a quota might.
    const freeze = await writeFreeze(
      kc,
      `keyrotor-test-freeze-verifier-${apiNamespace}`,
      { apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'], operations: ['UPDATE'] },
      `request.namespace != '${apiNamespace}' || request.name != 'prices-verifier'`,
      'the verifier is frozen for this test',
    );
    try {
      await start();
      await createIssuer({ scopes: ['prices:*'] });
      await keyFor('leaked');
      const keyId = (await waitForReady(kc, clientNamespace, 'leaked')).status?.keyId ?? '';
      await waitForListed([keyId], 'the key');

      await freeze.bind();
      // The binding takes effect within moments: wait until a write of the verifier is really refused.
      await waitFor(
        async () => {
          const refused = await failureStatus(
            core.patchNamespacedSecret(
              {
                namespace: apiNamespace,
                name: 'prices-verifier',
                body: { metadata: { labels: { probe: 'x' } } },
                dryRun: 'All',
              },
              mergePatch,
            ),
          ).catch(() => undefined);
          return refused?.code === 422 || refused?.code === 403 ? true : undefined;
        },
        { description: 'the verifier freeze to take effect' },
      );

      await patchApiKey('leaked', { spec: { revoked: true } });
      await waitForReady(kc, clientNamespace, 'leaked', { status: 'False', reason: 'Revoked' });
      expect(await keyIn('leaked')).toBe('');
      expect(await listedKeyIds()).toEqual([keyId]);
      await waitForIssuer(
        kc,
        apiNamespace,
        'prices',
        (issuer) => issuer.status?.conditions?.[0]?.reason === 'VerifierWriteFailed',
        'Ready=False, VerifierWriteFailed',
      );

      await freeze.unbind();
      await waitForListed([], 'no key once the verifier can be written again');
      await waitForIssuer(
        kc,
        apiNamespace,
        'prices',
        (issuer) => issuer.status?.conditions?.[0]?.reason === 'VerifierUpToDate',
        'Ready=True again',
      );
    } finally {
      await freeze.remove();
    }
  });

  it('makes the verifier module, reading the Secret as the kubelet writes it, accept exactly the valid keys', async () => {
    await start();
    await createIssuer({ scopes: ['prices:*', 'candles:read'] });
    await keyFor('rotating');
    // Only 'rotating' is due when the clock moves 41 minutes on.
    await keyFor('candles', { scopes: ['candles:read'], environment: 'staging', expiresAfter: '2h' });
    await keyFor('revoked', { expiresAfter: '2h' });
    await keyFor('refused', { scopes: ['orders:write'] });
    const rotatingFirst = (await waitForReady(kc, clientNamespace, 'rotating')).status?.keyId ?? '';
    const candlesId = (await waitForReady(kc, clientNamespace, 'candles')).status?.keyId ?? '';
    const revokedId = (await waitForReady(kc, clientNamespace, 'revoked')).status?.keyId ?? '';
    await waitForReady(kc, clientNamespace, 'refused', { status: 'False', reason: 'NotPermitted' });
    await waitForListed([rotatingFirst, candlesId, revokedId], 'three keys');
    const revokedKey = await keyIn('revoked');
    const oldKey = await keyIn('rotating');

    await advance(41 * MINUTE);
    const rotatingSecond = (await waitForReady(kc, clientNamespace, 'rotating', { keyIdNot: rotatingFirst }))
      .status?.keyId;
    await waitForListed([rotatingFirst, rotatingSecond ?? '', candlesId, revokedId], 'the rotated key too');

    const dir = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-verifier-mount-'));
    /** The Secret's data as files, decoded from base64 as the kubelet writes them. */
    let generation = 0;
    const mount = async () => {
      const secret = await readVerifierSecret();
      const files = Object.fromEntries(
        Object.entries(secret?.data ?? {}).map(([name, value]) => [name, Buffer.from(value, 'base64')]),
      );
      generation += 1;
      await writeSecretVolume(dir, files, generation);
    };
    try {
      await mount();
      const verifier = await followVerifier(path.join(dir, VERIFIER_FILE), { pollMs: 60_000 });
      try {
        const now = () => clock().getTime();
        const verify = (key: string, scope?: string) =>
          verifier.verify(key, { now, ...(scope ? { scope } : {}) });
        const newKey = await keyIn('rotating');
        const candlesKey = await keyIn('candles');
        expect(verify(newKey, 'prices:read')).toMatchObject({
          valid: true,
          reason: 'Valid',
          consumer: { namespace: clientNamespace, name: 'rotating' },
        });
        expect(verify(oldKey, 'prices:read').reason).toBe('Valid');
        expect(verify(candlesKey, 'candles:read')).toMatchObject({ reason: 'Valid', environment: 'staging' });
        expect(verify(candlesKey, 'prices:read').reason).toBe('InsufficientScope');
        expect(verify(revokedKey).reason).toBe('Valid');
        const stranger = formatKey(
          { prefix: 'kr', environment: 'production', bits: 256 },
          new Uint8Array(32).fill(7),
        );
        expect(verify(stranger).reason).toBe('Unknown');
        expect(verify(`${newKey.slice(0, -1)}x`).reason).toBe('Malformed');
        expect(verify('Bearer nonsense').reason).toBe('Malformed');

        await patchApiKey('revoked', { spec: { revoked: true } });
        await waitForReady(kc, clientNamespace, 'revoked', { status: 'False', reason: 'Revoked' });
        await mount();
        await waitFor(() => (verify(revokedKey).reason === 'Unknown' ? true : undefined), {
          description: 'the followed verifier to refuse the revoked key',
        });
        await advance(11 * MINUTE);
        await waitForListed([rotatingSecond ?? '', candlesId], 'the keys still valid');
        await mount();
        await waitFor(() => (verify(oldKey).reason === 'Unknown' ? true : undefined), {
          description: 'the followed verifier to drop the previous key after its grace period',
        });
        expect(verify(newKey).reason).toBe('Valid');
      } finally {
        verifier.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('batches a burst of new keys into few verifier writes', async () => {
    const started = Date.now();
    await start(1_000);
    await createIssuer({ scopes: ['prices:*'] });
    const names = Array.from({ length: 20 }, (_, index) => `burst-${index}`);
    await Promise.all(names.map((name) => keyFor(name)));
    const keyIds = await Promise.all(
      names.map(async (name) => (await waitForReady(kc, clientNamespace, name)).status?.keyId ?? ''),
    );
    await waitForListed(keyIds, 'all 20 keys');
    const elapsedMs = Date.now() - started;
    const revision = documentOf(await readVerifierSecret())?.revision ?? 0;
    // One write per batch interval at most, whatever the number of keys (plus the first, empty one).
    expect(revision).toBeLessThanOrEqual(Math.ceil(elapsedMs / 1_000) + 1);
    expect(revision).toBeLessThan(20);
    const events = await eventsFor(kc, clientNamespace, 'burst-0');
    expect(events.some((event) => event.reason === 'Issued')).toBe(true);
    expect((await readApiKey(kc, clientNamespace, 'burst-0')).status?.keyId).toBe(keyIds[0]);
  });
});
