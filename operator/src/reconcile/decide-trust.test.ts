// decide() against a tenant who may write the key Secret and the ApiKey's spec and metadata, but not
// its status: nothing it writes makes a key valid longer, puts a key of its choosing in place, brings
// back an old key, or stops a revocation.
import { describe, expect, it } from 'vitest';

import {
  ANNOTATION_ISSUED_AT,
  ANNOTATION_KEY_SEQUENCE,
  ANNOTATION_ROTATE,
  ANNOTATION_SEAL,
  DATA_API_KEY,
  DATA_EXPIRES_AT,
  DATA_KEY_ID,
  DATA_PREVIOUS_API_KEY,
} from '../api/names.ts';
import type { ApiKey, ApiKeySpec } from '../api/types.ts';
import { formatKey, keyId } from '../keys/format.ts';
import { ROTATION_DEFERRED, decide, type Plan } from './decide.ts';
import { keySource } from './key-source.testing.ts';
import type { SecretLike } from './secret.ts';
import { trustSecret } from './trust.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = new Date('2026-01-01T00:00:00.000Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const decoded = (secret: SecretLike | undefined, field: string) =>
  Buffer.from(secret?.data?.[field] ?? '', 'base64').toString('utf8');

function apiKey(spec: Partial<ApiKeySpec> = {}, annotations?: Record<string, string>): ApiKey {
  return {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: {
      name: 'bot',
      namespace: 'trading',
      uid: 'uid-1',
      generation: 1,
      ...(annotations ? { annotations } : {}),
    },
    spec: { scopes: ['prices:read'], expiresAfter: '30d', ...spec },
  };
}

/** The ApiKey (with the status written) and Secret as the next reconcile sees them. */
function applied(key: ApiKey, plan: Plan, previous?: SecretLike) {
  const manifest = plan.secretWrite?.manifest;
  const secret: SecretLike | undefined = manifest
    ? { ...manifest, metadata: { ...manifest.metadata, uid: 'secret-uid', resourceVersion: '20' } }
    : previous;
  return { apiKey: { ...key, status: plan.status }, secret };
}

function issued(spec: Partial<ApiKeySpec> = {}, keys = keySource()) {
  const key = apiKey(spec);
  const plan = decide({ apiKey: key, secret: undefined, now: T0, config: keys });
  return { ...applied(key, plan), keys };
}

const withData = (secret: SecretLike | undefined, data: Record<string, string>): SecretLike => ({
  ...secret,
  data: { ...secret?.data, ...data },
});
const withAnnotations = (
  secret: SecretLike | undefined,
  annotations: Record<string, string>,
): SecretLike => ({
  ...secret,
  metadata: { ...secret?.metadata, annotations: { ...secret?.metadata?.annotations, ...annotations } },
});

describe('trustSecret', () => {
  const { apiKey: key, secret, keys } = issued();
  const planted = formatKey({ prefix: 'kr', environment: 'production', bits: 256 }, new Uint8Array(32));
  const cases: [string, SecretLike, 'sealed' | 'unsealed' | 'tampered'][] = [
    ['as keyrotor wrote it', secret ?? {}, 'sealed'],
    ['issued-at moved', withAnnotations(secret, { [ANNOTATION_ISSUED_AT]: '2099-01-01T00:00:00.000Z' }), 'tampered'],
    ['expires-at moved', withData(secret, { [DATA_EXPIRES_AT]: b64('2099-01-31T00:00:00.000Z') }), 'tampered'],
    ['a key of the tenant with its id', withData(secret, { [DATA_API_KEY]: b64(planted), [DATA_KEY_ID]: b64(keyId(planted)) }), 'tampered'],
    ['a previous key added (not keyrotor’s: ignored)', withData(secret, { [DATA_PREVIOUS_API_KEY]: b64(planted) }), 'sealed'],
    ['the seal of another key', withAnnotations(secret, { [ANNOTATION_SEAL]: 'v1.AAAA' }), 'tampered'],
    ['a sequence raised', withAnnotations(secret, { [ANNOTATION_KEY_SEQUENCE]: '9' }), 'tampered'],
    ['seal and sequence emptied', withAnnotations(secret, { [ANNOTATION_SEAL]: '', [ANNOTATION_KEY_SEQUENCE]: '' }), 'tampered'],
  ]; // prettier-ignore
  it.each(cases)('%s: %s', (_what, observed, kind) => {
    expect(trustSecret(key, observed, keys.sealKey).kind).toBe(kind);
  });

  it('an unsealed Secret (written before seals) is believed only as far as the status confirms it', () => {
    const annotations = Object.fromEntries(
      Object.entries(secret?.metadata?.annotations ?? {}).filter(
        ([name]) => name !== ANNOTATION_SEAL && name !== ANNOTATION_KEY_SEQUENCE,
      ),
    );
    annotations[ANNOTATION_ISSUED_AT] = '2099-01-01T00:00:00.000Z';
    const unsealed = { ...withData(secret, { [DATA_EXPIRES_AT]: b64('2099-01-31T00:00:00.000Z') }) };
    unsealed.metadata = { ...unsealed.metadata, annotations };
    const trust = trustSecret(key, unsealed, keys.sealKey);
    expect(trust.kind).toBe('unsealed');
    expect(trust.contents.expiresAt?.toISOString()).toBe(key.status.expiresAt);
    expect(trust.contents.issuedAt?.toISOString()).toBe(key.status.issuedAt);
    const swapped = withData(unsealed, { [DATA_API_KEY]: b64(planted), [DATA_KEY_ID]: b64(keyId(planted)) });
    expect(trustSecret(key, swapped, keys.sealKey).kind).toBe('tampered');
  });

  it('a Secret sealed with another seal key is not keyrotor’s', () => {
    expect(trustSecret(key, secret ?? {}, new Uint8Array(32).fill(9)).kind).toBe('tampered');
  });
});

describe('trustSecret: parts keyrotor did not write', () => {
  it('a keyrotor field someone else added is ignored, not a broken seal, and the next write removes it', () => {
    const { apiKey: key, secret, keys } = issued();
    const added = withAnnotations(secret, { 'keyrotor.dev/revoked-key-id': 'x' });
    const trust = trustSecret(key, added, keys.sealKey);
    expect(trust.kind).toBe('sealed');
    expect(trust.kind === 'sealed' ? trust.ignored : []).toEqual(['annotations.keyrotor.dev/revoked-key-id']);
    const plan = decide({ apiKey: key, secret: added, now: later(HOUR), config: keys });
    expect(plan.status.keyId).toBe(key.status.keyId);
    expect(plan.secretWrite).toMatchObject({
      kind: 'apply',
      strip: ['annotations.keyrotor.dev/revoked-key-id'],
    });
    expect(plan.events.map((event) => event.reason)).toEqual(['SecretDrifted']);
  });

  it('a previous key added beside a sealed Secret is not listed, nor kept', () => {
    const { apiKey: key, secret, keys } = issued();
    const planted = formatKey(
      { prefix: 'kr', environment: 'production', bits: 256 },
      new Uint8Array(32).fill(3),
    );
    const added = withData(secret, {
      [DATA_PREVIOUS_API_KEY]: b64(planted),
      'previous-key-id': b64(keyId(planted)),
      'previous-expires-at': b64(later(20 * DAY).toISOString()),
    });
    const trust = trustSecret(key, added, keys.sealKey);
    expect(trust.contents.previousKey).toBeUndefined();
  });

  it('an unsealed Secret without a key, and a previous key of the tenant’s, is tampered unless the status says revoked', () => {
    const { apiKey: key, secret, keys } = issued();
    const planted = formatKey(
      { prefix: 'kr', environment: 'production', bits: 256 },
      new Uint8Array(32).fill(4),
    );
    const data = Object.fromEntries(
      Object.entries({
        ...secret?.data,
        [DATA_PREVIOUS_API_KEY]: b64(planted),
        'previous-key-id': b64(keyId(planted)),
      }).filter(([name]) => name !== DATA_API_KEY),
    );
    const annotations = Object.fromEntries(
      Object.entries(secret?.metadata?.annotations ?? {}).filter(
        ([name]) => name !== ANNOTATION_SEAL && name !== ANNOTATION_KEY_SEQUENCE,
      ),
    );
    const stripped: SecretLike = { ...secret, data, metadata: { ...secret?.metadata, annotations } };
    expect(trustSecret(key, stripped, keys.sealKey).kind).toBe('tampered');
    const plan = decide({ apiKey: key, secret: stripped, now: later(HOUR), config: keys });
    expect(plan.events.map((event) => event.reason)).toContain('SecretTampered');
  });
});

describe('decide: a tenant who writes the Secret', () => {
  it('moving issued-at and expires-at to 2099 gets a fresh key with the spec’s lifetime, a Warning and an audit line', () => {
    const { apiKey: key, secret, keys } = issued();
    const forged = withAnnotations(withData(secret, { [DATA_EXPIRES_AT]: b64('2099-01-31T00:00:00.000Z') }), {
      [ANNOTATION_ISSUED_AT]: '2099-01-01T00:00:00.000Z',
    });
    const plan = decide({ apiKey: key, secret: forged, now: later(DAY), config: keys });
    expect(plan.events.map((event) => event.reason)).toContain('SecretTampered');
    expect(plan.audit.map((entry) => entry.action)).toContain('replaced-tampered');
    expect(plan.status.keyId).not.toBe(key.status.keyId);
    expect(plan.status.expiresAt).toBe(later(31 * DAY).toISOString());
    expect(plan.status.previousKeyId).toBeUndefined();
    expect(decoded(plan.secretWrite?.manifest, DATA_PREVIOUS_API_KEY)).toBe('');
  });

  it('putting back the Secret as it was before a revocation does not bring the revoked key back', () => {
    const first = issued();
    const revokedKey = { ...first.apiKey, spec: { ...first.apiKey.spec, revoked: true } };
    const revokePlan = decide({
      apiKey: revokedKey,
      secret: first.secret,
      now: later(HOUR),
      config: first.keys,
    });
    const afterRevoke = applied(revokedKey, revokePlan, first.secret);
    expect(decoded(afterRevoke.secret, DATA_API_KEY)).toBe('');
    // The tenant un-revokes and restores the old Secret (sealed by keyrotor, but older).
    const unrevoked = { ...afterRevoke.apiKey, spec: { ...afterRevoke.apiKey.spec, revoked: false } };
    const plan = decide({
      apiKey: unrevoked,
      secret: first.secret,
      now: later(2 * HOUR),
      config: first.keys,
    });
    expect(plan.status.keyId).toBeDefined();
    expect(plan.status.keyId).not.toBe(first.apiKey.status.keyId);
    expect(plan.events.map((event) => event.reason)).toContain('SecretTampered');
  });

  it('a sealed Secret one sequence ahead of the status is a status write lost in a crash: caught up, not replaced', () => {
    const { apiKey: key, secret, keys } = issued();
    const rotate = { ...key, metadata: { ...key.metadata, annotations: { [ANNOTATION_ROTATE]: '1' } } };
    const rotated = decide({ apiKey: rotate, secret, now: later(HOUR), config: keys });
    const lost = applied(rotate, rotated);
    // The status write was lost: the ApiKey still has the status from before.
    const plan = decide({
      apiKey: { ...rotate, status: key.status },
      secret: lost.secret,
      now: later(HOUR + 1000),
      config: keys,
    });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.status.keyId).toBe(rotated.status.keyId);
    expect(plan.audit.map((entry) => entry.action)).toEqual(['recovered']);
  });
});

describe('decide: another ApiKey’s Secret', () => {
  it('is never adopted, whatever its annotations say', () => {
    const { secret, keys } = issued();
    const annotated = withAnnotations(secret, { 'keyrotor.dev/adopt': 'true' });
    const other = {
      ...apiKey({ secretName: 'bot' }),
      metadata: { ...apiKey().metadata, name: 'zz', uid: 'uid-2' },
    };
    const plan = decide({ apiKey: other, secret: annotated, now: later(HOUR), config: keys });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('SecretConflict');
  });
});

describe('decide: revocation always wins', () => {
  it('revoked with a secretTemplate label the controller refuses still empties the Secret', () => {
    const { apiKey: key, secret, keys } = issued();
    const bad = {
      ...key,
      spec: { ...key.spec, revoked: true, secretTemplate: { labels: { team: 'quant desk' } } },
    };
    const plan = decide({ apiKey: bad, secret, now: later(HOUR), config: keys });
    expect(plan.secretWrite).toBeDefined();
    expect(decoded(plan.secretWrite?.manifest, DATA_API_KEY)).toBe('');
    expect(plan.secretWrite?.manifest.metadata.labels).not.toHaveProperty('team');
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('Revoked');
  });
});

describe('decide: rotations inside a grace period and churn', () => {
  it('a second rotation inside the grace period waits for it to end, with a condition and one event', () => {
    const { apiKey: key, secret, keys } = issued({ rotation: { gracePeriod: '1d' } });
    const first = { ...key, metadata: { ...key.metadata, annotations: { [ANNOTATION_ROTATE]: 'a' } } };
    const afterFirst = applied(first, decide({ apiKey: first, secret, now: later(HOUR), config: keys }));
    const keyA = key.status.keyId;
    expect(afterFirst.apiKey.status.previousKeyId).toBe(keyA);
    const second = {
      ...afterFirst.apiKey,
      metadata: { ...first.metadata, annotations: { [ANNOTATION_ROTATE]: 'b' } },
    };
    const plan = decide({ apiKey: second, secret: afterFirst.secret, now: later(2 * HOUR), config: keys });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.status.previousKeyId).toBe(keyA);
    expect(plan.status.keyId).toBe(afterFirst.apiKey.status.keyId);
    const deferred = plan.status.conditions?.find((c) => c.type === ROTATION_DEFERRED);
    expect(deferred?.status).toBe('True');
    expect(deferred?.message).toContain(afterFirst.apiKey.status.graceEndsAt);
    expect(plan.status.nextRotationAt).toBe(afterFirst.apiKey.status.graceEndsAt);
    expect(plan.events.map((event) => event.reason)).toEqual(['RotationDeferred']);
    expect(plan.requeueAfterMs).toBe(
      Date.parse(afterFirst.apiKey.status.graceEndsAt ?? '') - later(2 * HOUR).getTime(),
    );
    // Once the grace period ended, the waiting request rotates.
    const after = applied(second, plan, afterFirst.secret);
    const end = new Date(Date.parse(afterFirst.apiKey.status.graceEndsAt ?? ''));
    const rotated = decide({
      apiKey: { ...second, status: after.apiKey.status },
      secret: after.secret,
      now: end,
      config: keys,
    });
    expect(rotated.replaced).toBe('Manual');
    expect(rotated.status.conditions?.some((c) => c.type === ROTATION_DEFERRED)).toBe(false);
  });

  it('a deferred rotation never waits past the current key’s expiry', () => {
    const { apiKey: key, secret, keys } = issued({ rotation: { gracePeriod: '20d' } });
    const first = { ...key, metadata: { ...key.metadata, annotations: { [ANNOTATION_ROTATE]: 'a' } } };
    const afterFirst = applied(first, decide({ apiKey: first, secret, now: later(HOUR), config: keys }));
    // The lifetime shrinks to 2 days: the current key expires long before the 20-day grace ends.
    const shorter = {
      ...afterFirst.apiKey,
      spec: { ...afterFirst.apiKey.spec, expiresAfter: '2d' },
      metadata: { ...first.metadata, generation: 2, annotations: { [ANNOTATION_ROTATE]: 'b' } },
    };
    const plan = decide({ apiKey: shorter, secret: afterFirst.secret, now: later(2 * HOUR), config: keys });
    const deferredUntil = Date.parse(plan.status.nextRotationAt ?? '');
    expect(deferredUntil).toBeLessThanOrEqual(Date.parse(plan.status.expiresAt ?? ''));
  });

  it('expiresAfter 1h with rotateBefore 59m59s rotates at most every five minutes', () => {
    const {
      apiKey: key,
      secret,
      keys,
    } = issued({ expiresAfter: '1h', rotation: { rotateBefore: '59m59s' } });
    expect(key.status.nextRotationAt).toBe(later(5 * MINUTE).toISOString());
    const early = decide({ apiKey: key, secret, now: later(10_000), config: keys });
    expect(early.secretWrite).toBeUndefined();
    expect(decide({ apiKey: key, secret, now: later(5 * MINUTE), config: keys }).replaced).toBe('Expiry');
  });

  it('a rotate value longer than the status allows is recorded by its hash, and rotates once', () => {
    const { apiKey: key, secret, keys } = issued();
    const value = 'x'.repeat(300);
    const asked = { ...key, metadata: { ...key.metadata, annotations: { [ANNOTATION_ROTATE]: value } } };
    const plan = decide({ apiKey: asked, secret, now: later(HOUR), config: keys });
    expect(plan.replaced).toBe('Manual');
    expect(plan.status.lastRotateRequest?.length).toBeLessThanOrEqual(256);
    const again = applied(asked, plan);
    expect(
      decide({ apiKey: again.apiKey, secret: again.secret, now: later(2 * HOUR), config: keys }).replaced,
    ).toBeUndefined();
  });
});
