// The environment rule (ADR 0003): a namespace's keyrotor.dev/environment label against its keys, in
// environmentProblem, in decide() (no key issued or rotated, the current one kept) and in the verifier
// (a forbidden key stops verifying).
import { describe, expect, it } from 'vitest';

import { ANNOTATION_ROTATE } from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer, Environment } from '../api/types.ts';
import { consumerApiKey, secretOf } from '../issuer/consumer.testing.ts';
import { entriesFor } from '../issuer/verifier-plan.ts';
import { decide, type DecideInput, type Plan } from './decide.ts';
import { LABEL_ENVIRONMENT, environmentProblem } from './environment.ts';
import { TEST_SEAL_KEY, keySource } from './key-source.testing.ts';
import { Reason } from './reasons.ts';

const DAY = 86_400_000;
const T0 = new Date('2026-01-01T00:00:00.000Z');
const VALID = 'valid values: development, test, staging, production';
const labelled = (value: string) => ({ [LABEL_ENVIRONMENT]: value, team: 'quant' });

describe('environmentProblem', () => {
  it.each<[string, Record<string, string>, Environment, boolean, string | undefined]>([
    ['no label, not required', { team: 'quant' }, 'development', false, undefined],
    ['no label, required', { team: 'quant' }, 'development', true, 'missing'],
    ['no labels at all, required', {}, 'production', true, 'missing'],
    ['the same environment', labelled('development'), 'development', false, undefined],
    ['the same environment, required', labelled('production'), 'production', true, undefined],
    ['another environment', labelled('production'), 'development', false, 'mismatch'],
    ['another environment, required', labelled('staging'), 'test', true, 'mismatch'],
    ['not an environment', labelled('prod'), 'production', false, 'invalid'],
    ['an empty value', labelled(''), 'production', false, 'invalid'],
    ['a value of another case', labelled('Production'), 'production', false, 'invalid'],
  ])('%s', (_name, labels, environment, required, kind) => {
    const problem = environmentProblem('trading', labels, environment, required);
    expect(problem?.kind).toBe(kind);
    if (problem === undefined) return;
    // Every refusal names the namespace, the label and the valid values.
    expect(problem.message).toContain('namespace trading');
    expect(problem.message).toContain(LABEL_ENVIRONMENT);
    expect(problem.message).toContain(VALID);
  });

  it('names the label value and the environment of the key when they differ', () => {
    expect(environmentProblem('trading', labelled('production'), 'development', false)?.message).toBe(
      `namespace trading is labelled ${LABEL_ENVIRONMENT}=production, but spec.environment is development: only production keys may be issued there (${VALID})`,
    );
    expect(environmentProblem('trading', labelled('prod'), 'production', false)?.message).toBe(
      `namespace trading is labelled ${LABEL_ENVIRONMENT}=prod, which is not an environment (${VALID})`,
    );
  });

  it('does not repeat a label value that could be a key', () => {
    const keyLike = 'kr_dev_3bXq9aZ1k3bXq9aZ1k3bXq9aZ1k3bXq9aZ1kQ9aZ1k';
    const message = environmentProblem('trading', labelled(keyLike), 'production', false)?.message ?? '';
    expect(message).toContain('not shown');
    expect(message).not.toContain(keyLike);
    expect(message).toContain(VALID);
  });
});

/** An issuer that permits every key of namespace trading. */
const issuer: ApiKeyIssuer = {
  apiVersion: 'keyrotor.dev/v1alpha1',
  kind: 'ApiKeyIssuer',
  metadata: { name: 'prices', namespace: 'market-data', uid: 'issuer-uid', generation: 1 },
  spec: { scopes: ['prices:*'], namespaceSelector: {} },
};

function withoutIssuer(apiKey: ApiKey, drop = true): ApiKey {
  if (!drop) return apiKey;
  const { issuerRef: _issuerRef, ...spec } = apiKey.spec;
  return { ...apiKey, spec };
}

/** A development key, issued while its namespace was labelled development. */
function issuedDevelopmentKey(keys = keySource(), withIssuer = false) {
  const apiKey = withoutIssuer(
    consumerApiKey('bot', {
      environment: 'development',
      expiresAfter: '30d',
      rotation: { rotateBefore: '10d' },
    }),
    !withIssuer,
  );
  const input = {
    apiKey,
    secret: undefined,
    now: T0,
    config: keys,
    namespaceLabels: labelled('development'),
  };
  const plan = decide(
    withIssuer ? { ...input, issuer: { issuer, namespaceLabels: input.namespaceLabels } } : input,
  );
  expect(plan.status.conditions?.[0]).toMatchObject({ status: 'True', reason: Reason.KeyIssued });
  return { apiKey: { ...apiKey, status: plan.status }, secret: secretOf(plan), keys };
}

const readyOf = (plan: Plan) => plan.status.conditions?.find((condition) => condition.type === 'Ready');

describe('decide: a namespace relabelled under its keys', () => {
  const relabelled = (overrides: Partial<DecideInput> = {}) => {
    const { apiKey, secret, keys } = issuedDevelopmentKey();
    const plan = decide({
      apiKey,
      secret,
      now: new Date(T0.getTime() + DAY),
      config: keys,
      namespaceLabels: labelled('production'),
      ...overrides,
    });
    return { apiKey, secret, keys, plan };
  };

  it('goes Ready=False EnvironmentMismatch, with a Warning event and an audit line, and keeps the key', () => {
    const { apiKey, keys, plan } = relabelled();
    expect(plan.secretWrite).toBeUndefined();
    expect(keys.issued).toHaveLength(1);
    const ready = readyOf(plan);
    expect(ready).toMatchObject({ status: 'False', reason: Reason.EnvironmentMismatch });
    expect(ready?.message).toContain(`${LABEL_ENVIRONMENT}=production`);
    expect(ready?.message).toContain('spec.environment is development');
    expect(ready?.message).toContain(VALID);
    expect(ready?.message).toContain(`key ${apiKey.status.keyId ?? ''} stays in the Secret`);
    // The key the workloads hold is still recorded: it was not replaced, only held back.
    expect(plan.status.keyId).toBe(apiKey.status.keyId);
    expect(plan.events).toEqual([
      expect.objectContaining({ type: 'Warning', reason: Reason.EnvironmentMismatch, note: ready?.message }),
    ]);
    expect(plan.audit).toEqual([
      expect.objectContaining({ reason: Reason.EnvironmentMismatch, keyId: apiKey.status.keyId }),
    ]);
    expect(plan.replaced).toBeUndefined();
    expect(plan.restart).toEqual([]);
  });

  it('reports it once: the next look with the same labels changes nothing and records no event', () => {
    const { apiKey, secret, keys, plan } = relabelled();
    const again = decide({
      apiKey: { ...apiKey, status: plan.status },
      secret,
      now: new Date(T0.getTime() + 2 * DAY),
      config: keys,
      namespaceLabels: labelled('production'),
    });
    expect(again.statusChanged).toBe(false);
    expect(again.events).toEqual([]);
    expect(again.secretWrite).toBeUndefined();
  });

  it.each<[string, (apiKey: ApiKey) => ApiKey, Date]>([
    [
      'a rotation asked for with the rotate annotation',
      (apiKey) => ({
        ...apiKey,
        metadata: { ...apiKey.metadata, annotations: { [ANNOTATION_ROTATE]: 'now' } },
      }),
      new Date(T0.getTime() + DAY),
    ],
    ['a rotation due before expiry', (apiKey) => apiKey, new Date(T0.getTime() + 25 * DAY)],
    ['a key past its expiry', (apiKey) => apiKey, new Date(T0.getTime() + 31 * DAY)],
  ])('does not rotate for %s', (_name, edit, now) => {
    const { apiKey, secret, keys } = issuedDevelopmentKey();
    const input = { apiKey: edit(apiKey), secret, now, config: keys };
    const plan = decide({ ...input, namespaceLabels: labelled('production') });
    expect(plan.secretWrite).toBeUndefined();
    expect(keys.issued).toHaveLength(1);
    expect(readyOf(plan)?.reason).toBe(Reason.EnvironmentMismatch);
    // The same moment in a namespace still labelled development rotates: only the label held it back.
    const control = decide({ ...input, namespaceLabels: labelled('development') });
    expect(control.replaced).toBeDefined();
    expect(keys.issued).toHaveLength(2);
  });

  it('issues no key when the Secret is gone', () => {
    const { plan, keys } = relabelled({ secret: undefined });
    expect(plan.secretWrite).toBeUndefined();
    expect(keys.issued).toHaveLength(1);
    expect(readyOf(plan)?.reason).toBe(Reason.EnvironmentMismatch);
  });

  it('issues no first key either, and says no key is kept', () => {
    const keys = keySource();
    const apiKey = withoutIssuer(consumerApiKey('fresh', { environment: 'development' }));
    const plan = decide({
      apiKey,
      secret: undefined,
      now: T0,
      config: keys,
      namespaceLabels: labelled('staging'),
    });
    expect(plan.secretWrite).toBeUndefined();
    expect(keys.issued).toEqual([]);
    expect(readyOf(plan)?.message).not.toContain('stays in the Secret');
  });

  it('still revokes: revocation always wins', () => {
    const { apiKey, secret, keys } = issuedDevelopmentKey();
    const plan = decide({
      apiKey: { ...apiKey, spec: { ...apiKey.spec, revoked: true } },
      secret,
      now: new Date(T0.getTime() + DAY),
      config: keys,
      namespaceLabels: labelled('production'),
    });
    expect(plan.replaced).toBe('Revoked');
    expect(plan.secretWrite?.manifest.data).not.toHaveProperty('api-key');
    expect(readyOf(plan)?.reason).toBe(Reason.Revoked);
  });

  it('is Ready again with the same key once the label matches again', () => {
    const { apiKey, secret, keys, plan } = relabelled();
    const back = decide({
      apiKey: { ...apiKey, status: plan.status },
      secret,
      now: new Date(T0.getTime() + 2 * DAY),
      config: keys,
      namespaceLabels: labelled('development'),
    });
    expect(readyOf(back)).toMatchObject({ status: 'True', reason: Reason.KeyIssued });
    expect(back.status.keyId).toBe(apiKey.status.keyId);
    expect(back.secretWrite).toBeUndefined();
    expect(keys.issued).toHaveLength(1);
  });

  it.each<[string, Record<string, string>, boolean, string | undefined]>([
    ['a label that is not an environment', labelled('prod'), false, Reason.EnvironmentMismatch],
    ['no label while the label is required', { team: 'quant' }, true, Reason.EnvironmentMismatch],
    ['no label while it is not required', { team: 'quant' }, false, Reason.KeyIssued],
  ])('%s', (_name, namespaceLabels, required, reason) => {
    const { apiKey, secret, keys } = issuedDevelopmentKey();
    const plan = decide({
      apiKey,
      secret,
      now: new Date(T0.getTime() + DAY),
      config: { ...keys, requireEnvironmentLabel: required },
      namespaceLabels,
    });
    expect(readyOf(plan)?.reason).toBe(reason);
    expect(plan.secretWrite).toBeUndefined();
  });

  it("reads the issuer context's labels when no namespace labels are given", () => {
    const { apiKey, secret, keys } = issuedDevelopmentKey(keySource(), true);
    const plan = decide({
      apiKey,
      secret,
      now: new Date(T0.getTime() + DAY),
      config: keys,
      issuer: { issuer, namespaceLabels: labelled('production') },
    });
    expect(readyOf(plan)?.reason).toBe(Reason.EnvironmentMismatch);
    expect(readyOf(plan)?.message).toContain("the issuer's verifier no longer lists it");
  });
});

describe('the verifier and the environment rule', () => {
  const entries = (apiKey: ApiKey, secret: ReturnType<typeof secretOf>, labels: Record<string, string>) =>
    entriesFor({ apiKey, secret }, issuer, labels, [], new Date(T0.getTime() + DAY), TEST_SEAL_KEY);

  it('lists a key whose namespace label matches, and none once the label names another environment', () => {
    const { apiKey, secret } = issuedDevelopmentKey(keySource(), true);
    expect(entries(apiKey, secret, labelled('development')).entries).toHaveLength(1);
    // Before the status says so: the labels alone are enough.
    expect(entries(apiKey, secret, labelled('production'))).toEqual({ entries: [], standing: 'refused' });
    expect(entries(apiKey, secret, labelled('prod'))).toEqual({ entries: [], standing: 'refused' });
  });

  it('lists none while the status says EnvironmentMismatch (an unlabelled namespace where one is required)', () => {
    const { apiKey, secret, keys } = issuedDevelopmentKey(keySource(), true);
    const refused = decide({
      apiKey,
      secret,
      now: new Date(T0.getTime() + DAY),
      config: { ...keys, requireEnvironmentLabel: true },
      namespaceLabels: { team: 'quant' },
      issuer: { issuer, namespaceLabels: { team: 'quant' } },
    });
    expect(readyOf(refused)?.reason).toBe(Reason.EnvironmentMismatch);
    expect(entries({ ...apiKey, status: refused.status }, secret, { team: 'quant' }).standing).toBe(
      'refused',
    );
    expect(entries(apiKey, secret, { team: 'quant' }).entries).toHaveLength(1);
  });
});
