import { describe, expect, it } from 'vitest';

import {
  ANNOTATION_ADOPT,
  DATA_API_KEY,
  DATA_KEY_ID,
  DATA_PREVIOUS_API_KEY,
  SECRET_TYPE,
} from '../api/names.ts';
import type { ApiKey, ApiKeySpec } from '../api/types.ts';
import { keyId } from '../keys/format.ts';
import { keySource } from './key-source.testing.ts';
import { decide, type DecideInput, type Plan } from './decide.ts';
import type { SecretLike } from './secret.ts';

const DAY = 86_400_000;
const T0 = new Date('2026-01-01T00:00:00.000Z');
const later = (ms: number) => new Date(T0.getTime() + ms);

function apiKey(spec: Partial<ApiKeySpec> = {}, extra: Partial<ApiKey> = {}): ApiKey {
  return {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name: 'bot', namespace: 'trading', uid: 'uid-1', generation: 1, resourceVersion: '10' },
    spec: { scopes: ['prices:read'], expiresAfter: '90d', ...spec },
    ...extra,
  };
}

/** The Secret and ApiKey as they stand after the plan was applied, as the next reconcile sees them. */
function applied(
  key: ApiKey,
  plan: Plan,
  resourceVersion = '20',
): { apiKey: ApiKey; secret: SecretLike | undefined } {
  const manifest = plan.secretWrite?.manifest;
  const secret = manifest && {
    ...manifest,
    metadata: { ...manifest.metadata, uid: 'secret-uid', resourceVersion },
  };
  return { apiKey: { ...key, status: plan.status }, secret };
}

const decoded = (secret: SecretLike | undefined, field: string) =>
  Buffer.from(secret?.data?.[field] ?? '', 'base64').toString('utf8');

function run(input: Omit<DecideInput, 'config'>, keys = keySource()): Plan {
  return decide({ ...input, config: keys });
}

describe('decide: issuing', () => {
  it('issues a first key into a new Secret owned by the ApiKey, with status, an Issued event and an audit line', () => {
    const keys = keySource();
    const plan = run({ apiKey: apiKey(), secret: undefined, now: T0 }, keys);
    const key = keys.issued[0] ?? '';
    expect(plan.secretWrite?.kind).toBe('apply');
    const manifest = plan.secretWrite?.manifest;
    expect(manifest?.type).toBe(SECRET_TYPE);
    expect(manifest?.metadata.resourceVersion).toBeUndefined();
    expect(manifest?.metadata.labels).toEqual({
      'app.kubernetes.io/managed-by': 'keyrotor',
      'keyrotor.dev/apikey': 'bot',
    });
    expect(manifest?.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'keyrotor.dev/v1alpha1',
        kind: 'ApiKey',
        name: 'bot',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(decoded(manifest, DATA_API_KEY)).toBe(key);
    expect(decoded(manifest, DATA_KEY_ID)).toBe(keyId(key));
    expect(decoded(manifest, 'scopes')).toBe('prices:read');
    expect(decoded(manifest, 'expires-at')).toBe(later(90 * DAY).toISOString());

    expect(plan.status).toMatchObject({
      observedGeneration: 1,
      secretName: 'bot',
      keyId: keyId(key),
      issuedAt: T0.toISOString(),
      expiresAt: later(90 * DAY).toISOString(),
      nextRotationAt: later(60 * DAY).toISOString(),
      rotationCount: 0,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KeyIssued',
          lastTransitionTime: T0.toISOString(),
          observedGeneration: 1,
        },
      ],
    });
    expect(plan.statusChanged).toBe(true);
    expect(plan.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Issued' })]);
    expect(plan.audit).toEqual([expect.objectContaining({ action: 'issued', keyId: keyId(key) })]);
    expect(plan.requeueAfterMs).toBe(60 * DAY);
  });

  it('never puts key material in status, events or audit lines', () => {
    const keys = keySource();
    const plan = run({ apiKey: apiKey(), secret: undefined, now: T0 }, keys);
    const visible = JSON.stringify([plan.status, plan.events, plan.audit]);
    expect(visible).not.toContain(keys.issued[0]);
  });

  it('writes nothing on a second pass over what it wrote (idempotent)', () => {
    const first = run({ apiKey: apiKey(), secret: undefined, now: T0 });
    const state = applied(apiKey(), first);
    const second = run({ ...state, now: later(1000) });
    expect(second.secretWrite).toBeUndefined();
    expect(second.statusChanged).toBe(false);
    expect(second.events).toEqual([]);
    expect(second.audit).toEqual([]);
  });

  it('writes nothing either beside the conditions other controllers apply (MountGuard, RestartTargetsReady)', () => {
    const first = run({ apiKey: apiKey(), secret: undefined, now: T0 });
    const state = applied(apiKey(), first);
    const others = ['MountGuard', 'RestartTargetsReady'].map((type) => ({
      type,
      status: 'True' as const,
      reason: 'Fine',
      message: 'kept by its own field manager',
      lastTransitionTime: T0.toISOString(),
    }));
    const conditions = [...(state.apiKey.status?.conditions ?? []), ...others];
    const withOthers = { ...state.apiKey, status: { ...state.apiKey.status, conditions } };
    expect(run({ ...state, apiKey: withOthers, now: later(1000) }).statusChanged).toBe(false);
    // Refused too: the status applied holds none of them (else this field manager would own them too).
    const invalid = {
      ...withOthers,
      spec: { ...withOthers.spec, rolloutRestartTargets: [{ kind: 'Job', name: 'x' }] },
    };
    const refused = run({ ...state, apiKey: invalid, now: later(2000) });
    expect(refused.status.conditions?.map((condition) => condition.type)).toEqual(['Ready']);
    const again = {
      ...invalid,
      status: { ...refused.status, conditions: [...(refused.status.conditions ?? []), ...others] },
    };
    expect(run({ ...state, apiKey: again, now: later(3000) }).statusChanged).toBe(false);
  });

  it('uses the secretName, template labels and annotations of the spec', () => {
    const spec = {
      secretName: 'bot-key',
      secretTemplate: { labels: { team: 'quant' }, annotations: { note: 'x' } },
    };
    const plan = run({ apiKey: apiKey(spec), secret: undefined, now: T0 });
    expect(plan.secretWrite?.manifest.metadata.name).toBe('bot-key');
    expect(plan.secretWrite?.manifest.metadata.labels.team).toBe('quant');
    expect(plan.secretWrite?.manifest.metadata.annotations.note).toBe('x');
    expect(plan.status.secretName).toBe('bot-key');
  });

  it('honours keyPrefix, environment and keyBits', () => {
    const keys = keySource();
    run(
      {
        apiKey: apiKey({ keyPrefix: 'mkt', environment: 'staging', keyBits: 128 }),
        secret: undefined,
        now: T0,
      },
      keys,
    );
    expect(keys.issued[0]).toMatch(/^mkt_stg_[0-9A-Za-z]{28}$/);
  });

  it('does nothing for an ApiKey being deleted (garbage collection removes the Secret)', () => {
    const plan = run({
      apiKey: apiKey({}, { metadata: { ...apiKey().metadata, deletionTimestamp: T0 } }),
      secret: undefined,
      now: T0,
    });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.statusChanged).toBe(false);
  });
});

describe('decide: bad input', () => {
  it('refuses an invalid spec with Ready=False InvalidSpec, one Warning, no write and no requeue', () => {
    const bad = apiKey({ expiresAfter: '3 days', scopes: ['Bad Scope'] });
    const plan = run({ apiKey: bad, secret: undefined, now: T0 });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.requeueAfterMs).toBeUndefined();
    expect(plan.status.conditions).toEqual([
      expect.objectContaining({
        type: 'Ready',
        status: 'False',
        reason: 'InvalidSpec',
        message: expect.stringContaining('expiresAfter "3 days"') as string,
      }),
    ]);
    expect(plan.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'InvalidSpec' })]);
    // The same refusal again: nothing new to say or write.
    const again = run({ apiKey: { ...bad, status: plan.status }, secret: undefined, now: later(5000) });
    expect(again.events).toEqual([]);
    expect(again.statusChanged).toBe(false);
  });

  it('keeps the current key working when a valid spec turns invalid', () => {
    const first = run({ apiKey: apiKey(), secret: undefined, now: T0 });
    const state = applied(apiKey(), first);
    const broken = {
      ...state.apiKey,
      metadata: { ...state.apiKey.metadata, generation: 2 },
      spec: { ...state.apiKey.spec, keyBits: 64 },
    };
    const plan = run({ apiKey: broken, secret: state.secret, now: later(1000) });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.status.keyId).toBe(first.status.keyId);
    expect(plan.status.conditions?.[0]?.message).toContain(
      `key ${first.status.keyId ?? ''} is unchanged and still valid`,
    );
  });

  it("refuses template labels that would override keyrotor's own", () => {
    const plan = run({
      apiKey: apiKey({ secretTemplate: { labels: { 'keyrotor.dev/apikey': 'other' } } }),
      secret: undefined,
      now: T0,
    });
    expect(plan.status.conditions?.[0]).toMatchObject({
      reason: 'InvalidSpec',
      message: expect.stringContaining('keyrotor.dev/apikey') as string,
    });
  });
});

describe('decide: a Secret keyrotor does not own', () => {
  const foreign: SecretLike = {
    metadata: { name: 'bot', uid: 'x', resourceVersion: '5', annotations: {} },
    type: 'Opaque',
    data: { token: 'c2VjcmV0' },
  };

  it('is never overwritten: SecretConflict, a Warning, and a later look', () => {
    const plan = run({ apiKey: apiKey(), secret: foreign, now: T0 });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'SecretConflict' });
    expect(plan.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SecretConflict' })]);
    expect(plan.requeueAfterMs).toBe(60_000);
  });

  it('is not mistaken for ours when another ApiKey of the same name (another uid) owns it', () => {
    const owned = run({
      apiKey: apiKey({}, { metadata: { ...apiKey().metadata, uid: 'old-uid' } }),
      secret: undefined,
      now: T0,
    });
    const plan = run({ apiKey: apiKey(), secret: owned.secretWrite?.manifest, now: T0 });
    expect(plan.status.conditions?.[0]?.reason).toBe('SecretConflict');
  });

  it('is adopted, with a fresh key, when annotated keyrotor.dev/adopt=true', () => {
    const adoptable = {
      ...foreign,
      metadata: { ...foreign.metadata, annotations: { [ANNOTATION_ADOPT]: 'true' } },
    };
    const plan = run({ apiKey: apiKey(), secret: adoptable, now: T0 });
    // An Opaque Secret cannot become keyrotor's type in place: it is recreated, if still the one observed.
    expect(plan.secretWrite).toMatchObject({ kind: 'recreate', uid: 'x' });
    expect(plan.events).toEqual([expect.objectContaining({ reason: 'SecretAdopted' })]);
    const sameType = run({ apiKey: apiKey(), secret: { ...adoptable, type: SECRET_TYPE }, now: T0 });
    expect(sameType.secretWrite?.kind).toBe('apply');
    expect(sameType.secretWrite?.manifest.metadata.resourceVersion).toBe('5');
  });
});

describe('decide: drift', () => {
  function issued() {
    const keys = keySource();
    const plan = run({ apiKey: apiKey(), secret: undefined, now: T0 }, keys);
    return { keys, ...applied(apiKey(), plan) };
  }

  it('issues a new key with a Warning when the Secret was deleted', () => {
    const { apiKey: key, keys } = issued();
    const plan = run({ apiKey: key, secret: undefined, now: later(DAY) }, keys);
    expect(keys.issued).toHaveLength(2);
    expect(plan.status.keyId).toBe(keyId(keys.issued[1] ?? ''));
    expect(plan.status.rotationCount).toBe(1);
    expect(plan.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SecretRecreated' })]);
  });

  it('replaces edited key material, which it no longer trusts, with a Warning', () => {
    const { apiKey: key, secret, keys } = issued();
    const edited = {
      ...secret,
      data: { ...secret?.data, [DATA_API_KEY]: Buffer.from('kr_live_guessed').toString('base64') },
    };
    const plan = run({ apiKey: key, secret: edited, now: later(DAY) }, keys);
    expect(plan.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SecretTampered' })]);
    expect(plan.secretWrite?.manifest.metadata.resourceVersion).toBe('20');
    expect(decoded(plan.secretWrite?.manifest, DATA_API_KEY)).toBe(keys.issued[1]);
    expect(decoded(plan.secretWrite?.manifest, DATA_PREVIOUS_API_KEY)).toBe('');
  });

  it('restores labels removed from the Secret, keeping the key, with a Warning', () => {
    const { apiKey: key, secret, keys } = issued();
    const relabelled = { ...secret, metadata: { ...secret?.metadata, labels: { other: 'x' } } };
    const plan = run({ apiKey: key, secret: relabelled, now: later(DAY) }, keys);
    expect(keys.issued).toHaveLength(1);
    expect(plan.secretWrite?.kind).toBe('apply');
    expect(plan.events).toEqual([
      expect.objectContaining({
        type: 'Warning',
        reason: 'SecretDrifted',
        note: expect.stringContaining('labels') as string,
      }),
    ]);
    expect(plan.statusChanged).toBe(false);
  });

  it('recreates a Secret whose type was changed (the type cannot change in place)', () => {
    const { apiKey: key, secret, keys } = issued();
    const retyped = { ...secret, type: 'Opaque' };
    const plan = run({ apiKey: key, secret: retyped, now: later(DAY) }, keys);
    expect(plan.secretWrite).toMatchObject({ kind: 'recreate', uid: 'secret-uid' });
    expect(keys.issued).toHaveLength(1);
  });

  it('recovers a status lost in a crash from the Secret, without a new key', () => {
    const { secret, keys } = issued();
    const plan = run({ apiKey: apiKey(), secret, now: later(DAY) }, keys);
    expect(keys.issued).toHaveLength(1);
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.status.keyId).toBe(keyId(keys.issued[0] ?? ''));
    expect(plan.status.issuedAt).toBe(T0.toISOString());
  });

  it('does not call a spec change drift: new scopes are written without a Warning', () => {
    const { apiKey: key, secret, keys } = issued();
    const changed = {
      ...key,
      metadata: { ...key.metadata, generation: 2 },
      spec: { ...key.spec, scopes: ['prices:read', 'signals:write'] },
    };
    const plan = run({ apiKey: changed, secret, now: later(DAY) }, keys);
    expect(decoded(plan.secretWrite?.manifest, 'scopes')).toBe('prices:read signals:write');
    expect(plan.events).toEqual([]);
    expect(keys.issued).toHaveLength(1);
  });
});

describe('decide: expiry', () => {
  it('rotates when the rotation is due, keeping the previous key for the grace period', () => {
    const keys = keySource();
    const spec = { rotation: { gracePeriod: '1d' } };
    const first = run({ apiKey: apiKey(spec), secret: undefined, now: T0 }, keys);
    const state = applied(apiKey(spec), first);
    const due = later(60 * DAY);
    const plan = run({ ...state, now: due }, keys);
    expect(plan.events).toEqual([expect.objectContaining({ reason: 'Rotated' })]);
    expect(decoded(plan.secretWrite?.manifest, DATA_API_KEY)).toBe(keys.issued[1]);
    expect(decoded(plan.secretWrite?.manifest, DATA_PREVIOUS_API_KEY)).toBe(keys.issued[0]);
    expect(plan.status.rotationCount).toBe(1);
    expect(plan.requeueAfterMs).toBe(DAY);
  });

  it('says Expired when the operator was away past the expiry, and rotates at once', () => {
    const keys = keySource();
    const first = run({ apiKey: apiKey(), secret: undefined, now: T0 }, keys);
    const plan = run({ ...applied(apiKey(), first), now: later(100 * DAY) }, keys);
    expect(plan.events.map((event) => event.reason)).toEqual(['Expired', 'Rotated']);
  });
});
