import { readFile } from 'node:fs/promises';

import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';

import type { ApiKey } from '../api/types.ts';
import { REPLICATOR_KEYS, replicatorKeys } from './replicators.ts';
import { resolveSpec } from './spec.ts';

const ALLOW_HINT = 'or have the cluster allow it (chart value admissionPolicies.replicators.allowedKeys)';

describe('replicatorKeys', () => {
  it.each([
    // [what, labels, annotations, allowed, the field: key of each message]
    ['no template', undefined, undefined, [], []],
    ['plain metadata', { team: 'quant' }, { 'example.com/owner': 'quant' }, [], []],
    [
      'Reflector, any key under its prefix',
      {},
      { 'reflector.v1.k8s.emberstack.com/reflection-allowed': 'true' },
      [],
      ['annotations: reflector.v1.k8s.emberstack.com/reflection-allowed'],
    ],
    [
      'kubernetes-replicator push',
      {},
      { 'replicator.v1.mittwald.de/replicate-to': 'other' },
      [],
      ['annotations: replicator.v1.mittwald.de/replicate-to'],
    ],
    [
      'kubed sync to namespaces and to other clusters',
      {},
      { 'kubed.appscode.com/sync': '', 'kubed.appscode.com/sync-contexts': 'prod' },
      [],
      ['annotations: kubed.appscode.com/sync', 'annotations: kubed.appscode.com/sync-contexts'],
    ],
    [
      'HNC selectors',
      {},
      { 'propagate.hnc.x-k8s.io/treeSelect': 'a' },
      [],
      ['annotations: propagate.hnc.x-k8s.io/treeSelect'],
    ],
    // An opt-out copies nothing.
    ['HNC opt-out', {}, { 'propagate.hnc.x-k8s.io/none': 'true' }, [], []],
    [
      'Accurate',
      {},
      { 'accurate.cybozu.com/propagate': 'update' },
      [],
      ['annotations: accurate.cybozu.com/propagate'],
    ],
    ['Synator', {}, { 'synator/sync': 'yes' }, [], ['annotations: synator/sync']],
    [
      'Rancher project-scoped Secret, a label',
      { 'management.cattle.io/project-scoped-secret': 'p-1' },
      {},
      [],
      ['labels: management.cattle.io/project-scoped-secret'],
    ],
    // A replicator reads its switch from one place: the same key elsewhere switches nothing on.
    ['a Reflector key as a label', { 'reflector.v1.k8s.emberstack.com/reflects': 'x' }, {}, [], []],
    ['a look-alike domain', {}, { 'evil-reflector.v1.k8s.emberstack.com/reflects': 'x' }, [], []],
    [
      'a key with the exact key allowed',
      {},
      { 'replicator.v1.mittwald.de/replicate-to': 'b' },
      ['replicator.v1.mittwald.de/replicate-to'],
      [],
    ],
    [
      'a prefix allowed covers its keys only',
      { 'management.cattle.io/project-scoped-secret': 'p-1' },
      { 'kubed.appscode.com/sync': '' },
      ['kubed.appscode.com/'],
      ['labels: management.cattle.io/project-scoped-secret'],
    ],
    // An allowed entry without "/" is exact: it does not allow keys that merely start with it.
    [
      'an exact entry is no prefix',
      {},
      { 'synator/sync': 'yes' },
      ['synator'],
      ['annotations: synator/sync'],
    ],
  ] as const)('%s', (_what, labels, annotations, allowed, expected) => {
    const messages = replicatorKeys(labels, annotations, allowed);
    expect(messages.map((message) => message.split(' switches on ')[0])).toEqual(
      expected.map((entry) => `spec.secretTemplate.${entry}`),
    );
    for (const message of messages) expect(message).toContain(ALLOW_HINT);
  });

  it('names the replicator and never a value', () => {
    const [message] = replicatorKeys(
      undefined,
      { 'reflector.v1.k8s.emberstack.com/reflects': 'SECRET-VALUE' },
      [],
    );
    expect(message).toBe(
      'spec.secretTemplate.annotations: reflector.v1.k8s.emberstack.com/reflects switches on a Secret ' +
        'replicator (emberstack Reflector), which would copy the key into other namespaces beyond its readers ' +
        `and revocation; remove it, ${ALLOW_HINT}`,
    );
    expect(message).not.toContain('SECRET-VALUE');
  });

  it('holds the same keys as the admission policy keyrotor-replicators', async () => {
    const policy = load(
      await readFile(new URL('../../../policies/replicators-policy.yaml', import.meta.url), 'utf8'),
    ) as { spec: { variables: { name: string; expression: string }[] } };
    const table = (name: string) => {
      const expression = policy.spec.variables.find((variable) => variable.name === name)?.expression ?? '';
      return [...expression.matchAll(/'([^']+)':\s*'([^']+)'/g)].map(([, pattern, replicator]) => ({
        pattern,
        replicator,
      }));
    };
    const ours = (field: string) =>
      REPLICATOR_KEYS.filter((entry) => entry.field === field).map(({ pattern, replicator }) => ({
        pattern,
        replicator,
      }));
    expect(table('annotationReplicators')).toEqual(ours('annotations'));
    expect(table('labelReplicators')).toEqual(ours('labels'));
    expect(ours('labels').length + ours('annotations').length).toBe(REPLICATOR_KEYS.length);
  });
});

describe('resolveSpec refuses a secretTemplate that switches on a replicator', () => {
  const apiKey = (annotations: Record<string, string>): ApiKey => ({
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name: 'quotes', namespace: 'trading', uid: 'uid-quotes' },
    spec: { scopes: ['quotes:read'], secretTemplate: { annotations } },
  });
  const now = new Date('2026-01-01T00:00:00Z');
  const reflector = { 'reflector.v1.k8s.emberstack.com/reflection-allowed': 'true' };

  it('as InvalidSpec naming the field and the key, even without the admission policy', () => {
    const resolved = resolveSpec(apiKey(reflector), now);
    expect(resolved.ok).toBe(false);
    expect(resolved.ok ? '' : resolved.message).toContain(
      'spec.secretTemplate.annotations: reflector.v1.k8s.emberstack.com/reflection-allowed',
    );
  });

  it('unless the operator is told to allow it (--allowed-replicator-keys)', () => {
    expect(resolveSpec(apiKey(reflector), now, ['reflector.v1.k8s.emberstack.com/']).ok).toBe(true);
    expect(resolveSpec(apiKey({ 'example.com/owner': 'quant' }), now).ok).toBe(true);
  });
});
