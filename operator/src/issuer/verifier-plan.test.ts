// planVerifier's guarantees to the APIs that read its documents: every document it writes is one
// keyrotor's own reader accepts, a restored document never goes back in revision, and keys that must
// stop working leave the document even when it is full.
import { describe, expect, it } from 'vitest';

import type { ApiKeyIssuer, ApiKeySpec } from '../api/types.ts';
import { decide } from '../reconcile/decide.ts';
import { TEST_SEAL_KEY, keySource } from '../reconcile/key-source.testing.ts';
import { consumerApiKey, secretOf } from './consumer.testing.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { VERIFIER_FILE, parseVerifierDocument, type VerifierDocument } from '../verify/document.ts';
import {
  MAX_ENTRY_HORIZON_MS,
  entryProblem,
  planVerifier,
  type Consumer,
  type VerifierPlan,
} from './verifier-plan.ts';

const MINUTE = 60_000;
const T0 = new Date('2026-01-01T00:00:00.000Z');
const CLIENT_LABELS = { team: 'quant' };
const keys = keySource();

function issuer(status?: ApiKeyIssuer['status']): ApiKeyIssuer {
  return {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKeyIssuer',
    metadata: { name: 'prices', namespace: 'market-data', uid: 'issuer-uid', generation: 1 },
    spec: { scopes: ['prices:*'], namespaceSelector: { matchLabels: CLIENT_LABELS } },
    ...(status === undefined ? {} : { status }),
  };
}

const apiKey = consumerApiKey;

/** An ApiKey with the key decide() issued it, and its Secret. */
function issued(name: string, spec: Partial<ApiKeySpec> = {}): Consumer {
  const key = apiKey(name, spec);
  const plan = decide({
    apiKey: key,
    secret: undefined,
    now: T0,
    config: keys,
    issuer: { issuer: issuer(), namespaceLabels: CLIENT_LABELS },
  });
  return { apiKey: { ...key, status: plan.status }, secret: secretOf(plan) };
}

const revoke = (consumer: Consumer): Consumer => ({
  ...consumer,
  apiKey: { ...consumer.apiKey, spec: { ...consumer.apiKey.spec, revoked: true } },
});

const textOf = (plan: VerifierPlan) =>
  Buffer.from(plan.write?.data[VERIFIER_FILE] ?? '', 'base64').toString('utf8');
const documentOf = (plan: VerifierPlan): VerifierDocument => parseVerifierDocument(textOf(plan));
const idsOf = (plan: VerifierPlan) => documentOf(plan).keys.map((entry) => entry.keyId);
const keyIdOf = (consumer: Consumer) => consumer.apiKey.status?.keyId ?? '';

/** The verifier Secret after `plan`'s write, as the cache would show it. */
function stored(plan: VerifierPlan, resourceVersion = '5'): SecretLike {
  const write = plan.write;
  if (write === undefined) throw new Error('the plan writes nothing');
  return { ...write, metadata: { ...write.metadata, uid: 'verifier-uid', resourceVersion } };
}

const plan = (
  consumers: Consumer[],
  options: { verifierSecret?: SecretLike; against?: ApiKeyIssuer; maxBytes?: number; now?: Date } = {},
) =>
  planVerifier({
    issuer: options.against ?? issuer(),
    consumers,
    namespaceLabels: () => CLIENT_LABELS,
    verifierSecret: options.verifierSecret,
    now: options.now ?? T0,
    sealKey: TEST_SEAL_KEY,
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
  });

const entry = (notBefore: string, notAfter: string) => ({
  keyId: 'a'.repeat(16),
  sha256: 'a'.repeat(64),
  scopes: ['prices:read'],
  environment: 'production',
  notBefore,
  notAfter,
  consumer: { namespace: 'trading', name: 'bot' },
});

describe('entryProblem', () => {
  it('accepts an entry keyrotor writes', () => {
    expect(entryProblem(entry(T0.toISOString(), '2026-02-01T00:00:00.000Z'), T0)).toBeUndefined();
  });

  it('refuses times the reader refuses: a year past 9999 (+010000), not RFC 3339, notAfter not after notBefore', () => {
    const farFuture = new Date('+010000-01-01T00:00:00.000Z');
    expect(farFuture.toISOString()).toBe('+010000-01-01T00:00:00.000Z');
    expect(entryProblem(entry(T0.toISOString(), farFuture.toISOString()), T0)).toBe(
      'notAfter must be an RFC 3339 time',
    );
    expect(entryProblem(entry('2026-01-01', '2026-02-01T00:00:00.000Z'), T0)).toBe(
      'notBefore must be an RFC 3339 time',
    );
    expect(entryProblem(entry(T0.toISOString(), T0.toISOString()), T0)).toBe(
      'notAfter must be after notBefore',
    );
  });

  it('refuses times out of bounds: valid for more than 3650 days from now, or from before 1970', () => {
    const horizon = T0.getTime() + MAX_ENTRY_HORIZON_MS;
    expect(entryProblem(entry(T0.toISOString(), new Date(horizon).toISOString()), T0)).toBeUndefined();
    expect(entryProblem(entry(T0.toISOString(), new Date(horizon + 1).toISOString()), T0)).toContain(
      'more than 3651 days from now',
    );
    expect(entryProblem(entry(T0.toISOString(), '9999-12-31T23:59:59.999Z'), T0)).toContain('days from now');
    expect(entryProblem(entry('1969-12-31T23:59:59.000Z', T0.toISOString()), T0)).toBe(
      'notBefore is before 1970',
    );
  });
});

describe('planVerifier: documents a reader accepts', () => {
  it('writes a document its reader accepts when a Secret claims an expiry in the year +010000', () => {
    const good = issued('good');
    const bad = issued('bad');
    const data = {
      ...bad.secret?.data,
      'expires-at': Buffer.from('+010000-01-01T00:00:00.000Z').toString('base64'),
    };
    const tampered = { ...bad, secret: { ...bad.secret, data } };
    const result = plan([good, tampered]);
    expect(() => parseVerifierDocument(textOf(result))).not.toThrow();
    expect(textOf(result)).not.toContain('+010000');
    expect(idsOf(result)).toEqual([keyIdOf(good)]);
    expect(result.status.activeKeys).toBe(1);
  });

  it('continues the revision after the verifier Secret was deleted, and rewrites a hand edit that parses the same', () => {
    const a = issued('a');
    const first = plan([a]);
    expect(documentOf(first).revision).toBe(1);
    const against = issuer({ ...first.status, verifierRevision: 7 });
    const restored = plan([a], { against });
    expect(documentOf(restored).revision).toBe(8);
    expect(restored.status.verifierRevision).toBe(8);

    const settled = plan([a], { against: issuer(restored.status), verifierSecret: stored(restored) });
    expect(settled.write).toBeUndefined();
    // The same document, pretty-printed by hand: not what keyrotor wrote, so written back.
    const edited = stored(restored);
    const pretty = JSON.stringify(documentOf(restored), undefined, 2);
    const handEdited = { ...edited, data: { [VERIFIER_FILE]: Buffer.from(pretty).toString('base64') } };
    const repaired = plan([a], { against: issuer(restored.status), verifierSecret: handEdited });
    expect(textOf(repaired)).toBe(textOf(restored));
  });
});

describe('planVerifier: removals land when the document is full', () => {
  it('removes a revoked key and keeps the listed ones, holding back only new keys that do not fit', () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => issued(name)) as [
      Consumer,
      Consumer,
      Consumer,
      Consumer,
    ];
    const first = plan([a, b]);
    // Room for exactly two entries (all four are the same size).
    const maxBytes = Buffer.byteLength(textOf(first));
    const full = plan([a, b, c, d], {
      verifierSecret: stored(first),
      against: issuer(first.status),
      maxBytes,
    });
    expect(full.write).toBeUndefined();
    expect(full.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'VerifierTooLarge' });
    expect(full.status.conditions?.[0]?.message).toContain('2 new keys are held back');
    expect(full.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'VerifierTooLarge' })]);
    // The same held-back keys again: no second Warning.
    const again = plan([a, b, c, d], {
      verifierSecret: stored(first),
      against: issuer(full.status),
      maxBytes,
    });
    expect(again.events).toEqual([]);
    expect(again.statusChanged).toBe(false);

    const revoked = plan([a, revoke(b), c, d], {
      verifierSecret: stored(first),
      against: issuer(full.status),
      maxBytes,
    });
    const listed = idsOf(revoked);
    expect(listed).not.toContain(keyIdOf(b));
    expect(listed).toContain(keyIdOf(a));
    expect(listed).toHaveLength(2);
    expect(Buffer.byteLength(textOf(revoked))).toBeLessThanOrEqual(maxBytes);
    expect(revoked.change?.removed).toEqual([keyIdOf(b)]);
    expect(revoked.status).toMatchObject({ activeKeys: 2, verifierRevision: 2 });
    expect(revoked.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'VerifierTooLarge' });
    expect(revoked.status.conditions?.[0]?.message).toContain('1 new key is held back');
  });

  it('removes keys that must stop working even when no new key fits, and is Ready again once all fit', () => {
    const [a, b, c] = ['a', 'b', 'c'].map((name) => issued(name)) as [Consumer, Consumer, Consumer];
    const first = plan([a, b]);
    const maxBytes = Buffer.byteLength(textOf(first)) - 1;
    // The limit was lowered below what is listed: the listed key that must stop working leaves, the
    // other stays, the new one waits.
    const lowered = plan([revoke(a), b, c], {
      verifierSecret: stored(first),
      against: issuer(first.status),
      maxBytes,
    });
    expect(idsOf(lowered)).toEqual([keyIdOf(b)]);
    expect(lowered.status.conditions?.[0]?.reason).toBe('VerifierTooLarge');

    const roomy = plan([revoke(a), b, c], {
      verifierSecret: stored(lowered, '6'),
      against: issuer(lowered.status),
      maxBytes: maxBytes * 2,
    });
    expect(idsOf(roomy).sort()).toEqual([keyIdOf(b), keyIdOf(c)].sort());
    expect(roomy.status.conditions?.[0]).toMatchObject({ status: 'True', reason: 'VerifierUpToDate' });
  });

  it('writes what fits under a low limit, and forty keys fit under the default one', () => {
    const many = Array.from({ length: 40 }, (_, index) => issued(`k${index}`));
    const small = plan(many, { maxBytes: 4096 });
    expect(small.write).toBeDefined();
    expect(Buffer.byteLength(textOf(small))).toBeLessThanOrEqual(4096);
    expect(small.status.conditions?.[0]?.reason).toBe('VerifierTooLarge');
    expect(plan(many).status.conditions?.[0]?.reason).toBe('VerifierUpToDate');
  });

  it('never lets an edited revision go backwards', () => {
    const a = issued('a');
    const first = plan([a]);
    const later = plan([a, issued('b')], { verifierSecret: stored(first), against: issuer(first.status) });
    const rolledBack = plan([a], {
      verifierSecret: stored(first, '9'),
      against: issuer(later.status),
      now: new Date(T0.getTime() + MINUTE),
    });
    expect(documentOf(rolledBack).revision).toBe(3);
  });
});
