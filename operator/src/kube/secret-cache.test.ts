// What keyrotor's Secret cache keeps of a Secret (cachedSecretView), and that keyrotor decides the same
// on what it keeps: its own Secret is left alone, a planted or oversized field is still seen as not
// keyrotor's, and a tenant's Secret with keyrotor's label and type costs a few bytes, not its data.
import { describe, expect, it } from 'vitest';

import {
  DATA_API_KEY,
  DATA_PREVIOUS_API_KEY,
  ISSUER_KIND,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  SECRET_TYPE,
  VERIFIER_SECRET_TYPE,
} from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import { decide } from '../reconcile/decide.ts';
import { keySource } from '../reconcile/key-source.testing.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { trustSecret } from '../reconcile/trust.ts';
import { VERIFIER_FILE } from '../verify/document.ts';
import {
  MAX_CACHED_VALUE_CHARS,
  MAX_CACHED_VERIFIER_CHARS,
  OVERSIZED,
  cachedSecretView,
  cachedSize,
} from './secret-cache.ts';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const HOUR = 3_600_000;
const MIB = 1024 * 1024;
const junk = (chars: number) => 'A'.repeat(chars);
const managedFields = [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:data': {} } }];
const apiKeyOwner = { apiVersion: 'keyrotor.dev/v1alpha1', kind: 'ApiKey', name: 'bot', uid: 'uid-1' };
const issuerOwner = { apiVersion: 'keyrotor.dev/v1alpha1', kind: ISSUER_KIND, name: 'api', uid: 'uid-i' };

const apiKey: ApiKey = {
  apiVersion: 'keyrotor.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name: 'bot', namespace: 'trading', uid: 'uid-1', generation: 1 },
  spec: {
    scopes: ['prices:read'],
    expiresAfter: '30d',
    secretTemplate: { labels: { team: 'quant' }, annotations: { 'example.com/owner': 'desk-7' } },
  },
};

/** keyrotor's Secret as the API server serves it after the first reconcile, and the ApiKey after it. */
function issued() {
  const keys = keySource();
  const plan = decide({ apiKey, secret: undefined, now: T0, config: keys });
  const manifest = plan.secretWrite?.manifest;
  if (manifest === undefined) throw new Error('the first reconcile writes the Secret');
  const served = {
    ...manifest,
    metadata: { ...manifest.metadata, uid: 'secret-uid', resourceVersion: '20', managedFields },
  };
  return { keys, secret: served as SecretLike, apiKey: { ...apiKey, status: plan.status } };
}

const withData = (secret: SecretLike, data: Record<string, string>): SecretLike => ({
  ...secret,
  data: { ...secret.data, ...data },
});

describe('cachedSecretView', () => {
  it('keyrotor’s own Secret is kept whole but for managedFields and blockOwnerDeletion', () => {
    const { secret } = issued();
    const { managedFields: _dropped, ...metadata } = secret.metadata as Record<string, unknown>;
    const { apiVersion: _v1, kind: _secret, ...object } = secret as SecretLike & Record<string, unknown>;
    expect(cachedSecretView(secret)).toEqual({
      ...object,
      metadata: { ...metadata, ownerReferences: [{ ...apiKeyOwner, controller: true }] },
    });
  });

  it.each([
    {
      name: 'a labelled Secret of keyrotor’s type that no ApiKey controls keeps only keyrotor’s keys and labels',
      secret: {
        metadata: {
          name: 'junk',
          namespace: 'trading',
          uid: 'u',
          resourceVersion: '7',
          labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, team: junk(63) },
          annotations: { 'example.com/blob': junk(MIB), 'keyrotor.dev/adopt': 'true' },
          managedFields,
        },
        type: SECRET_TYPE,
        data: { junk: junk(MIB), [DATA_API_KEY]: junk(MIB), scopes: 'cHJpY2VzOnJlYWQ=' },
      },
      view: {
        metadata: {
          name: 'junk',
          namespace: 'trading',
          uid: 'u',
          resourceVersion: '7',
          labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE },
          annotations: { 'keyrotor.dev/adopt': 'true' },
        },
        type: SECRET_TYPE,
        data: { [DATA_API_KEY]: OVERSIZED, scopes: 'cHJpY2VzOnJlYWQ=' },
      },
    },
    {
      name: 'only the controller reference is kept, only its identifying fields',
      secret: {
        metadata: {
          name: 's',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'x' },
            { ...apiKeyOwner, controller: true, blockOwnerDeletion: true },
          ],
        },
        type: 'Opaque',
        data: { [DATA_API_KEY]: 'a2V5' },
      },
      view: {
        metadata: { name: 's', ownerReferences: [{ ...apiKeyOwner, controller: true }] },
        type: 'Opaque',
      },
    },
    {
      name: 'a verifier Secret an ApiKeyIssuer controls keeps its document (up to what a Secret holds), nothing else',
      secret: {
        metadata: { name: 'api-verifier', ownerReferences: [{ ...issuerOwner, controller: true }] },
        type: VERIFIER_SECRET_TYPE,
        data: { [VERIFIER_FILE]: junk(MAX_CACHED_VERIFIER_CHARS), extra: junk(100) },
      },
      view: {
        metadata: { name: 'api-verifier', ownerReferences: [{ ...issuerOwner, controller: true }] },
        type: VERIFIER_SECRET_TYPE,
        data: { [VERIFIER_FILE]: junk(MAX_CACHED_VERIFIER_CHARS) },
      },
    },
    {
      name: 'a verifier Secret no issuer controls keeps no document',
      secret: {
        metadata: { name: 'fake-verifier' },
        type: VERIFIER_SECRET_TYPE,
        data: { [VERIFIER_FILE]: junk(MIB) },
      },
      view: {
        metadata: { name: 'fake-verifier' },
        type: VERIFIER_SECRET_TYPE,
        data: { [VERIFIER_FILE]: OVERSIZED },
      },
    },
    {
      name: 'a verifier document longer than a Secret holds is not kept',
      secret: {
        metadata: { name: 'api-verifier', ownerReferences: [{ ...issuerOwner, controller: true }] },
        type: VERIFIER_SECRET_TYPE,
        data: { [VERIFIER_FILE]: junk(MAX_CACHED_VERIFIER_CHARS + 1) },
      },
      view: {
        metadata: { name: 'api-verifier', ownerReferences: [{ ...issuerOwner, controller: true }] },
        type: VERIFIER_SECRET_TYPE,
        data: { [VERIFIER_FILE]: OVERSIZED },
      },
    },
    { name: 'a Secret without metadata or data', secret: {}, view: { metadata: {} } },
  ])('$name', ({ secret, view }) => {
    expect(cachedSecretView(secret as SecretLike)).toEqual(view);
  });

  it('an ApiKey’s Secret keeps its secretTemplate labels and annotations, not stray keyrotor.dev/ ones', () => {
    const { secret } = issued();
    const view: SecretLike = cachedSecretView({
      ...secret,
      metadata: {
        ...secret.metadata,
        annotations: { ...secret.metadata?.annotations, 'keyrotor.dev/x': 'y' },
      },
    });
    expect(view.metadata?.labels?.team).toBe('quant');
    expect(view.metadata?.annotations?.['example.com/owner']).toBe('desk-7');
    expect(view.metadata?.annotations?.['keyrotor.dev/x']).toBeUndefined();
  });

  it('a value one character over the cap is kept as present but empty; one at the cap is kept', () => {
    const secret = { metadata: {}, type: SECRET_TYPE, data: { scopes: junk(MAX_CACHED_VALUE_CHARS) } };
    expect(cachedSecretView(secret).data).toEqual({ scopes: junk(MAX_CACHED_VALUE_CHARS) });
    secret.data.scopes = junk(MAX_CACHED_VALUE_CHARS + 1);
    expect(cachedSecretView(secret).data).toEqual({ scopes: OVERSIZED });
  });

  it('500 flooded Secrets of 1 MiB each cost under a kilobyte each', () => {
    const flooded = Array.from({ length: 500 }, (_, index) =>
      cachedSecretView({
        metadata: { name: `flood-${index}`, labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE } },
        type: SECRET_TYPE,
        data: { blob: junk(MIB), [DATA_API_KEY]: junk(MIB) },
      }),
    );
    expect(flooded.reduce((total, secret) => total + cachedSize(secret), 0)).toBeLessThan(500 * 1024);
  });
});

describe('keyrotor decides the same on the cached view', () => {
  it('its own Secret, seen through the view, needs no write and raises nothing', () => {
    const { keys, secret, apiKey: current } = issued();
    const plan = decide({
      apiKey: current,
      secret: cachedSecretView(secret),
      now: new Date(T0.getTime() + HOUR),
      config: keys,
    });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.events).toEqual([]);
  });

  it('an oversized key is not keyrotor’s: tampered, and replaced', () => {
    const { keys, secret, apiKey: current } = issued();
    const view = cachedSecretView(withData(secret, { [DATA_API_KEY]: junk(MIB) }));
    expect(view.data?.[DATA_API_KEY]).toBe(OVERSIZED);
    expect(trustSecret(current, view, keys.sealKey).kind).toBe('tampered');
    const plan = decide({ apiKey: current, secret: view, now: new Date(T0.getTime() + HOUR), config: keys });
    expect(plan.secretWrite?.manifest.data[DATA_API_KEY]).not.toBe(secret.data?.[DATA_API_KEY]);
  });

  it('an oversized previous key the seal does not name is still seen, and stripped', () => {
    const { keys, secret, apiKey: current } = issued();
    const view = cachedSecretView(withData(secret, { [DATA_PREVIOUS_API_KEY]: junk(MIB) }));
    const trust = trustSecret(current, view, keys.sealKey);
    expect(trust).toMatchObject({ kind: 'sealed', ignored: [`data.${DATA_PREVIOUS_API_KEY}`] });
    const plan = decide({ apiKey: current, secret: view, now: new Date(T0.getTime() + HOUR), config: keys });
    expect(plan.secretWrite).toMatchObject({ kind: 'apply', strip: [`data.${DATA_PREVIOUS_API_KEY}`] });
    expect(plan.secretWrite?.manifest.data[DATA_API_KEY]).toBe(secret.data?.[DATA_API_KEY]);
  });
});
