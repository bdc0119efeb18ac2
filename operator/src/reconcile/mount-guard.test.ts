import { describe, expect, it } from 'vitest';

import type { ApiKey, ReadersEntry } from '../api/types.ts';
import {
  desiredGuardEntries,
  mountGuardCondition,
  sameEntries,
  secretsUsedBy,
  unlistedConsumers,
  type PodLike,
} from './mount-guard.ts';
import { apiKey, issued, ready, secret, withoutReaders } from './readers.testing.ts';
import type { SecretLike } from './secret.ts';

describe('desiredGuardEntries', () => {
  /** keyrotor's cache: Secret name -> the uid of the ApiKey that controls it. */
  const cache =
    (owners: Record<string, string>) =>
    (key: ApiKey): SecretLike | undefined => {
      const uid = owners[key.spec.secretName ?? key.metadata.name];
      return uid === undefined ? undefined : secret(uid);
    };
  const cases: {
    name: string;
    apiKeys: ApiKey[];
    owners: Record<string, string>;
    /** ApiKeys keyrotor is about to write a key for (the ApiKey controller passed the ownership check). */
    pending?: string[];
    entries: ReadersEntry[];
  }[] = [
    {
      name: 'an entry per Secret whose ApiKey lists readers and controls it',
      apiKeys: [
        apiKey('bot', { spec: { secretName: 'db', readers: { serviceAccounts: ['b', 'a'] } } }),
        withoutReaders(apiKey('open', { spec: { secretName: 'open' } })),
      ],
      owners: { db: 'uid-bot', open: 'uid-open' },
      entries: [{ secretName: 'db', apiKey: 'bot', serviceAccounts: ['a', 'b'] }],
    },
    {
      name: 'an entry before the key is issued: no Secret yet, keyrotor about to write it',
      apiKeys: [apiKey('bot', { status: null })],
      owners: {},
      pending: ['bot'],
      entries: [{ secretName: 'db', apiKey: 'bot', serviceAccounts: ['app'] }],
    },
    {
      name: 'no entry for a Secret keyrotor has not decided to write (a squat stuck on IssuerNotFound)',
      apiKeys: [apiKey('squat', { status: issued(ready('False', 'IssuerNotFound')) })],
      owners: {},
      entries: [],
    },
    {
      name: 'an entry for a revoked key whose Secret keyrotor still controls (refusing is safe)',
      apiKeys: [apiKey('bot', { spec: { revoked: true }, status: issued(ready('False', 'Revoked')) })],
      owners: { db: 'uid-bot' },
      entries: [{ secretName: 'db', apiKey: 'bot', serviceAccounts: ['app'] }],
    },
    {
      name: 'no entry for an ApiKey naming a Secret it does not own (SecretConflict)',
      apiKeys: [apiKey('zz', { status: issued(ready('False', 'SecretConflict')) })],
      owners: {},
      pending: ['zz'],
      entries: [],
    },
    {
      name: "no entry for an ApiKey naming another ApiKey's Secret: only the owner's",
      apiKeys: [
        apiKey('a-takeover', { spec: { readers: { serviceAccounts: ['mine'] } } }),
        apiKey('owner', { spec: { readers: { serviceAccounts: ['app'] } } }),
      ],
      owners: { db: 'uid-owner' },
      entries: [{ secretName: 'db', apiKey: 'owner', serviceAccounts: ['app'] }],
    },
    {
      name: 'two ApiKeys about to write one absent Secret guard it together (only common readers)',
      apiKeys: [
        apiKey('b', { spec: { readers: { serviceAccounts: ['app', 'two'] } }, status: null }),
        apiKey('a', { spec: { readers: { serviceAccounts: ['app', 'one'] } }, status: null }),
      ],
      owners: {},
      pending: ['a', 'b'],
      entries: [{ secretName: 'db', apiKey: 'a,b', serviceAccounts: ['app'] }],
    },
    {
      name: 'no entry for an ApiKey being deleted whose Secret is gone',
      apiKeys: [apiKey('bot', { deleting: true })],
      owners: {},
      pending: ['bot'],
      entries: [],
    },
  ];
  it.each(cases)('$name', ({ apiKeys, owners, pending = [], entries }) => {
    expect(desiredGuardEntries(apiKeys, cache(owners), (key) => pending.includes(key.metadata.name))).toEqual(
      entries,
    );
  });

  it('names at most three ApiKeys in an entry, so the field never outgrows its schema', () => {
    const many = Array.from({ length: 17 }, (_, i) =>
      apiKey(`k${String(i).padStart(2, '0')}`, { status: null }),
    );
    const [entry] = desiredGuardEntries(
      many,
      () => undefined,
      () => true,
    );
    expect(entry?.apiKey).toBe('k00,k01,k02 and 14 more');
  });
});

describe('sameEntries', () => {
  const entry = (serviceAccounts: string[]): ReadersEntry => ({
    secretName: 'db',
    apiKey: 'bot',
    serviceAccounts,
  });
  it('ignores order and tells a change of readers', () => {
    expect(sameEntries([entry(['a', 'b'])], [entry(['b', 'a'])])).toBe(true);
    expect(sameEntries([entry(['a'])], [entry(['a', 'intruder'])])).toBe(false);
    expect(sameEntries([entry(['a'])], undefined)).toBe(false);
    expect(sameEntries([], [])).toBe(true);
  });
});

describe('secretsUsedBy', () => {
  it('finds every way into a Secret: volumes, projected volumes, env, envFrom of every container kind', () => {
    const used = secretsUsedBy({
      volumes: [
        { secret: { secretName: 'volume' } },
        { projected: { sources: [{ secret: { name: 'projected' } }] } },
      ],
      containers: [{ env: [{ valueFrom: { secretKeyRef: { name: 'env' } } }] }],
      initContainers: [{ envFrom: [{ secretRef: { name: 'init-env-from' } }] }],
      ephemeralContainers: [{ env: [{ valueFrom: { secretKeyRef: { name: 'debug' } } }] }],
      imagePullSecrets: [{ name: 'pull' }],
    });
    expect([...used].sort()).toEqual(['debug', 'env', 'init-env-from', 'projected', 'pull', 'volume']);
    const drivers = secretsUsedBy({
      volumes: [
        { csi: { nodePublishSecretRef: { name: 'csi' } } },
        { flexVolume: { secretRef: { name: 'flex' } } },
        { cephfs: { secretRef: { name: 'cephfs' } } },
        { rbd: { secretRef: { name: 'rbd' } } },
        { iscsi: { secretRef: { name: 'iscsi' } } },
        { azureFile: { secretName: 'azure' } },
      ],
    });
    expect([...drivers].sort()).toEqual(['azure', 'cephfs', 'csi', 'flex', 'iscsi', 'rbd']);
  });
});

describe('unlistedConsumers', () => {
  const pod = (name: string, serviceAccountName: string | undefined, secretName: string): PodLike => ({
    metadata: { name },
    spec: {
      ...(serviceAccountName === undefined ? {} : { serviceAccountName }),
      volumes: [{ secret: { secretName } }],
    },
  });
  it('names the Pods that use the Secret as a ServiceAccount not listed, the default one included', () => {
    const pods = [
      pod('z-early', 'intruder', 'db'),
      pod('reader', 'app', 'db'),
      pod('other', 'intruder', 'x'),
      pod('a-default', undefined, 'db'),
    ];
    expect(unlistedConsumers(pods, 'db', ['app'])).toEqual([
      { pod: 'a-default', serviceAccount: 'default' },
      { pod: 'z-early', serviceAccount: 'intruder' },
    ]);
  });
});

describe('mountGuardCondition', () => {
  it('is True when no one else uses the Secret', () => {
    expect(mountGuardCondition('db', [])).toMatchObject({
      type: 'MountGuard',
      status: 'True',
      reason: 'Guarded',
    });
  });
  it('names the unlisted Pods and counts those beyond ten', () => {
    const consumers = Array.from({ length: 12 }, (_, i) => ({
      pod: `p${String(i).padStart(2, '0')}`,
      serviceAccount: 'sa',
    }));
    const condition = mountGuardCondition('db', consumers);
    expect(condition).toMatchObject({ status: 'False', reason: 'UnlistedConsumers' });
    expect(condition.message).toContain('Pods p00 (ServiceAccount sa), p01');
    expect(condition.message).toContain('p09 (ServiceAccount sa) and 2 more use Secret db');
    expect(condition.message).not.toContain('p10');
  });
});
