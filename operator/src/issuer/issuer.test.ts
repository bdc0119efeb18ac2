import { describe, expect, it } from 'vitest';

import { VERIFIER_SECRET_TYPE } from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer, ApiKeyIssuerSpec } from '../api/types.ts';
import { keyHash } from '../keys/format.ts';
import { decide } from '../reconcile/decide.ts';
import { TEST_SEAL_KEY, keySource } from '../reconcile/key-source.testing.ts';
import { consumerApiKey, secretOf } from './consumer.testing.ts';
import { controllerReference } from '../reconcile/owner.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { resolveSpec } from '../reconcile/spec.ts';
import { VERIFIER_FILE, parseVerifierDocument, type VerifierDocument } from '../verify/document.ts';
import { Verifier } from '../verify/verifier.ts';
import { admit } from '../reconcile/admission.ts';
import { describeSelector, selectorMatches } from '../reconcile/selector.ts';
import { MAX_VERIFIER_BYTES, planVerifier, type Consumer, type VerifierPlan } from './verifier-plan.ts';

const MINUTE = 60_000;
const T0 = new Date('2026-01-01T00:00:00.000Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const CLIENT_LABELS = { team: 'quant' };

function issuer(spec: Partial<ApiKeyIssuerSpec> = {}): ApiKeyIssuer {
  return {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKeyIssuer',
    metadata: { name: 'prices', namespace: 'market-data', uid: 'issuer-uid', generation: 1 },
    spec: {
      scopes: ['prices:*', 'candles:read'],
      namespaceSelector: { matchLabels: CLIENT_LABELS },
      ...spec,
    },
  };
}

const apiKey = consumerApiKey;

function admission(
  key: ApiKey,
  against: ApiKeyIssuer | undefined,
  labels: Readonly<Record<string, string>> = CLIENT_LABELS,
) {
  const resolved = resolveSpec(key, T0);
  if (!resolved.ok) throw new Error(resolved.message);
  return admit(key, resolved.spec, against, labels);
}

describe('selectorMatches', () => {
  it('needs every matchLabels pair and every expression', () => {
    const selector = {
      matchLabels: { team: 'quant' },
      matchExpressions: [
        { key: 'env', operator: 'In' as const, values: ['prod', 'stg'] },
        { key: 'frozen', operator: 'DoesNotExist' as const },
      ],
    };
    expect(selectorMatches(selector, { team: 'quant', env: 'prod' })).toBe(true);
    expect(selectorMatches(selector, { team: 'quant', env: 'dev' })).toBe(false);
    expect(selectorMatches(selector, { team: 'quant', env: 'prod', frozen: 'yes' })).toBe(false);
    expect(selectorMatches(selector, { env: 'prod' })).toBe(false);
    expect(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, {})).toBe(
      true,
    );
    expect(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' })).toBe(true);
    expect(selectorMatches({}, {})).toBe(true);
    expect(describeSelector(selector)).toBe('team=quant,env in (prod,stg),!frozen');
    expect(describeSelector({})).toBe('every namespace');
  });
});

describe('admit', () => {
  it('permits a key that every rule allows, and any key without issuerRef', () => {
    const strict = issuer({ environments: ['production'], maxExpiresAfter: '1h', requireSchedule: true });
    const key = apiKey('bot', {
      scopes: ['prices:read', 'prices:*', 'candles:read'],
      rotation: { schedule: '0 * * * *' },
    });
    expect(admission(key, strict)).toEqual({ permitted: true });
    expect(admission(apiKey('plain', { issuerRef: undefined as never }), undefined).permitted).toBe(true);
  });

  it.each([
    [
      'namespaceSelector',
      apiKey('bot'),
      issuer(),
      { team: 'other' },
      'namespace trading does not match its namespaceSelector (team=quant)',
    ],
    [
      'namespaceSelector',
      apiKey('bot'),
      issuer({ namespaceSelector: undefined as never }),
      CLIENT_LABELS,
      'only ApiKeys in namespace market-data may use it, not trading',
    ],
    [
      'scopes',
      apiKey('bot', { scopes: ['prices:read', 'orders:write'] }),
      issuer(),
      CLIENT_LABELS,
      '"orders:write" is not among the scopes it grants (prices:*, candles:read)',
    ],
    ['scopes', apiKey('bot', { scopes: ['candles:*'] }), issuer(), CLIENT_LABELS, '"candles:*" is not among'],
    [
      'environments',
      apiKey('bot', { environment: 'development' }),
      issuer({ environments: ['production', 'staging'] }),
      CLIENT_LABELS,
      'environment development is not one it accepts (production, staging)',
    ],
    [
      'maxExpiresAfter',
      apiKey('bot', { expiresAfter: '2h' }),
      issuer({ maxExpiresAfter: '90m' }),
      CLIENT_LABELS,
      'expiresAfter 2h is longer than its maxExpiresAfter (90m)',
    ],
    [
      'requireSchedule',
      apiKey('bot'),
      issuer({ requireSchedule: true }),
      CLIENT_LABELS,
      'it requires a rotation schedule',
    ],
  ] as const)('refuses by its %s rule, naming it', (rule, key, against, labels, why) => {
    const result = admission(key, against, labels);
    expect(result).toMatchObject({ permitted: false, reason: 'NotPermitted', rules: [rule] });
    if (result.permitted) return;
    expect(result.message).toContain(`ApiKeyIssuer market-data/prices does not permit this key: [${rule}]`);
    expect(result.message).toContain(why);
  });

  it('lists every broken rule at once, and says when the issuer does not exist', () => {
    const key = apiKey('bot', { scopes: ['orders:write'], environment: 'test', expiresAfter: '2h' });
    const result = admission(key, issuer({ environments: ['production'], maxExpiresAfter: '1h' }), {});
    expect(result).toMatchObject({
      rules: ['namespaceSelector', 'scopes', 'environments', 'maxExpiresAfter'],
    });
    expect(admission(key, undefined)).toMatchObject({
      permitted: false,
      reason: 'IssuerNotFound',
      rules: [],
    });
  });
});

describe('decide with an issuer', () => {
  const context = (against: ApiKeyIssuer | undefined, labels = CLIENT_LABELS) => ({
    issuer: { issuer: against, namespaceLabels: labels },
  });

  it('issues no key the issuer refuses: Ready=False NotPermitted, one Warning naming the rule', () => {
    const key = apiKey('bot', { scopes: ['orders:write'] });
    const plan = decide({
      apiKey: key,
      secret: undefined,
      now: T0,
      config: keySource(),
      ...context(issuer()),
    });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'NotPermitted' });
    expect(plan.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'NotPermitted' })]);
    expect(plan.events[0]?.note).toContain('[scopes]');
    const again = decide({
      apiKey: { ...key, status: plan.status },
      secret: undefined,
      now: later(MINUTE),
      config: keySource(),
      ...context(issuer()),
    });
    expect(again.events).toEqual([]);
    expect(again.statusChanged).toBe(false);
  });

  it('keeps the Secret of a key its issuer stops permitting, and revokes it whatever the issuer says', () => {
    const keys = keySource();
    const key = apiKey('bot');
    const first = decide({ apiKey: key, secret: undefined, now: T0, config: keys, ...context(issuer()) });
    expect(first.secretWrite).toBeDefined();
    const issued = { ...key, status: first.status };
    const refused = decide({
      apiKey: issued,
      secret: secretOf(first),
      now: later(MINUTE),
      config: keys,
      ...context(issuer({ scopes: ['candles:read'] })),
    });
    expect(refused.secretWrite).toBeUndefined();
    expect(refused.status.conditions?.[0]?.message).toContain(
      `key ${first.status.keyId} stays in the Secret`,
    );
    const revoked = decide({
      apiKey: { ...issued, spec: { ...issued.spec, revoked: true } },
      secret: secretOf(first),
      now: later(MINUTE),
      config: keys,
      ...context(undefined),
    });
    expect(revoked.status.conditions?.[0]?.reason).toBe('Revoked');
  });
});

/** Runs decide() for a key as the controller would, returning the key and Secret after the plan. */
/** One key source for every test, so no two keys are the same. */
const sharedKeys = keySource();

function issued(key: ApiKey, now = T0, keys = sharedKeys, against = issuer()): Consumer & { key: string } {
  const context = { issuer: against, namespaceLabels: CLIENT_LABELS };
  const plan = decide({ apiKey: key, secret: undefined, now, config: keys, issuer: context });
  return { apiKey: { ...key, status: plan.status }, secret: secretOf(plan), key: keys.issued.at(-1) ?? '' };
}

function documentOf(plan: VerifierPlan): VerifierDocument {
  const data = plan.write?.data[VERIFIER_FILE] ?? '';
  return parseVerifierDocument(Buffer.from(data, 'base64').toString('utf8'));
}

const plan = (consumers: Consumer[], now = T0, verifierSecret?: SecretLike, against = issuer()) =>
  planVerifier({
    issuer: against,
    consumers,
    namespaceLabels: () => CLIENT_LABELS,
    verifierSecret,
    now,
    sealKey: TEST_SEAL_KEY,
  });

describe('planVerifier', () => {
  it('lists the hash of every permitted key, never a key, in a Secret the issuer owns', () => {
    const a = issued(apiKey('a'));
    const b = issued(apiKey('b', { scopes: ['candles:read'], environment: 'staging' }));
    const refused = issued(
      apiKey('c', { scopes: ['orders:write'] }),
      T0,
      sharedKeys,
      issuer({ scopes: ['orders:write'] }),
    );
    const result = plan([a, b, refused]);
    const manifest = result.write;
    expect(manifest?.type).toBe(VERIFIER_SECRET_TYPE);
    expect(manifest?.metadata).toMatchObject({
      name: 'prices-verifier',
      namespace: 'market-data',
      labels: { 'app.kubernetes.io/managed-by': 'keyrotor', 'keyrotor.dev/apikeyissuer': 'prices' },
      ownerReferences: [
        expect.objectContaining({ kind: 'ApiKeyIssuer', uid: 'issuer-uid', controller: true }),
      ],
    });
    const text = Buffer.from(manifest?.data[VERIFIER_FILE] ?? '', 'base64').toString('utf8');
    for (const consumer of [a, b, refused]) expect(text).not.toContain(consumer.key);
    const document = documentOf(result);
    expect(document).toMatchObject({
      apiVersion: 'keyrotor.dev/verifier/v1',
      issuer: 'market-data/prices',
      revision: 1,
    });
    expect(document.keys.map((entry) => entry.sha256).sort()).toEqual(
      [keyHash(a.key), keyHash(b.key)].sort(),
    );
    expect(document.keys.find((entry) => entry.sha256 === keyHash(b.key))).toMatchObject({
      scopes: ['candles:read'],
      environment: 'staging',
      notBefore: T0.toISOString(),
      notAfter: later(60 * MINUTE).toISOString(),
      consumer: { namespace: 'trading', name: 'b' },
    });
    expect(result.status).toMatchObject({ activeKeys: 2, consumers: 2, refusedKeys: 1, verifierRevision: 1 });
    expect(result.status.conditions?.[0]).toMatchObject({ status: 'True', reason: 'VerifierUpToDate' });
    expect(result.requeueAfterMs).toBe(60 * MINUTE);
    const verifier = new Verifier(document);
    expect(verifier.verify(a.key, { now: () => T0.getTime() }).reason).toBe('Valid');
    expect(verifier.verify(refused.key, { now: () => T0.getTime() }).reason).toBe('Unknown');
  });

  it('writes nothing and keeps its revision when the keys are the same', () => {
    const a = issued(apiKey('a'));
    const first = plan([a]);
    const stored = { ...first.write, metadata: { ...first.write?.metadata, uid: 'v', resourceVersion: '5' } };
    const again = plan([a], later(MINUTE), stored, { ...issuer(), status: first.status });
    expect(again.write).toBeUndefined();
    expect(again.statusChanged).toBe(false);
  });

  it('lists the previous key until its grace period ends, then only the new one', () => {
    const keys = keySource();
    const before = issued(apiKey('a'), T0, keys);
    const rotation = decide({
      apiKey: before.apiKey,
      secret: before.secret,
      now: later(41 * MINUTE),
      config: keys,
      issuer: { issuer: issuer(), namespaceLabels: CLIENT_LABELS },
    });
    const rotated = {
      apiKey: { ...before.apiKey, status: rotation.status },
      secret: secretOf(rotation, '30'),
    };
    const during = plan([rotated], later(41 * MINUTE));
    const document = documentOf(during);
    expect(document.keys).toHaveLength(2);
    expect(document.keys.find((entry) => entry.keyId === before.apiKey.status?.keyId)).toMatchObject({
      notBefore: T0.toISOString(),
      notAfter: later(51 * MINUTE).toISOString(),
    });
    expect(during.requeueAfterMs).toBe(10 * MINUTE);
    const stored = {
      ...during.write,
      metadata: { ...during.write?.metadata, uid: 'v', resourceVersion: '6' },
    };
    const after = plan([rotated], later(51 * MINUTE), stored);
    expect(documentOf(after).keys.map((entry) => entry.keyId)).toEqual([rotation.status.keyId]);
    expect(documentOf(after).revision).toBe(2);
    expect(after.change).toEqual({ revision: 2, added: [], removed: [before.apiKey.status?.keyId] });
  });

  it('drops revoked, deleted and refused keys, and a Secret whose key does not match its id', () => {
    const a = issued(apiKey('a'));
    const revoked = { ...a, apiKey: { ...a.apiKey, spec: { ...a.apiKey.spec, revoked: true } } };
    expect(plan([revoked]).status.activeKeys).toBe(0);
    const deleting = {
      ...a,
      apiKey: { ...a.apiKey, metadata: { ...a.apiKey.metadata, deletionTimestamp: T0 } },
    };
    expect(plan([deleting]).status.activeKeys).toBe(0);
    expect(plan([a], T0, undefined, issuer({ environments: ['development'] })).status).toMatchObject({
      activeKeys: 0,
      refusedKeys: 1,
    });
    const other = issued(apiKey('b'));
    const swapped = {
      ...a,
      secret: { ...a.secret, data: { ...a.secret?.data, 'api-key': other.secret?.data?.['api-key'] ?? '' } },
    };
    expect(plan([swapped]).status.activeKeys).toBe(0);
    const foreignSecret = { ...a.secret, metadata: { ...a.secret?.metadata, ownerReferences: [] } };
    expect(plan([{ ...a, secret: foreignSecret }]).status.activeKeys).toBe(0);
  });

  it('writes only documents a reader accepts: one entry per key, each valid from now at the latest', () => {
    const a = issued(apiKey('a'), later(5 * MINUTE));
    // Another ApiKey's Secret holding a copy of the same key (same data, its own owner).
    const copy = apiKey('copy');
    const copied = {
      apiKey: copy,
      secret: {
        ...a.secret,
        metadata: {
          ...a.secret?.metadata,
          ownerReferences: [{ ...controllerReference(copy), controller: true }],
        },
      },
    };
    const result = plan([a, copied], T0);
    const document = documentOf(result);
    expect(document.keys).toHaveLength(1);
    // Issued "five minutes from now" by a replica whose clock runs ahead: listed as valid from now.
    expect(document.keys[0]?.notBefore).toBe(T0.toISOString());
  });

  it('keeps listing the key of an ApiKey whose spec it cannot read, as the key keeps working', () => {
    const a = issued(apiKey('a'));
    const first = plan([a]);
    const stored = { ...first.write, metadata: { ...first.write?.metadata, uid: 'v', resourceVersion: '5' } };
    const broken = { ...a, apiKey: { ...a.apiKey, spec: { ...a.apiKey.spec, expiresAfter: 'soon' } } };
    const next = plan([broken], later(MINUTE), stored, { ...issuer(), status: first.status });
    expect(next.write).toBeUndefined();
    expect(next.status.activeKeys).toBe(1);
  });

  it('leaves a Secret it does not own alone, and writes no more than a Secret holds', () => {
    const a = issued(apiKey('a'));
    const foreign = { metadata: { name: 'prices-verifier', uid: 'x', resourceVersion: '1' }, data: {} };
    const conflict = plan([a], T0, foreign);
    expect(conflict.write).toBeUndefined();
    expect(conflict.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'VerifierConflict' });
    expect(conflict.events).toEqual([
      expect.objectContaining({ type: 'Warning', reason: 'VerifierConflict' }),
    ]);
    expect(plan([a], T0, foreign, { ...issuer(), status: conflict.status }).events).toEqual([]);

    const many = Array.from({ length: Math.ceil(MAX_VERIFIER_BYTES / 250) }, (_, index) =>
      issued(apiKey(`k${index}`)),
    );
    const tooLarge = plan(many);
    // What fits is written (verifier-plan.test.ts: removals always are); the rest is held back.
    expect(Buffer.byteLength(JSON.stringify(documentOf(tooLarge)))).toBeLessThanOrEqual(MAX_VERIFIER_BYTES);
    expect(tooLarge.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'VerifierTooLarge' });
    // Some 4,000 keys issued and listed: seconds on a busy machine.
  }, 30_000);
});
