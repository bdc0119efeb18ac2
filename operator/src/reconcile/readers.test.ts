import { describe, expect, it } from 'vitest';

import type { ApiKey, ApiKeySpec, ApiKeyStatus, Condition } from '../api/types.ts';
import { desiredReaderRbac, desiredReadersData, holdsLiveKey, readerRbacName } from './readers.ts';
import type { SecretLike } from './secret.ts';

const ready = (status: Condition['status'], reason: string): Condition => ({
  type: 'Ready',
  status,
  reason,
  message: 'test',
  lastTransitionTime: '2026-01-01T00:00:00Z',
});

/** The status keyrotor writes once a key is in the Secret, with its Ready condition. */
const issued = (condition: Condition = ready('True', 'KeyIssued')): ApiKeyStatus => ({
  secretName: 'db',
  keyId: 'kid-1',
  conditions: [condition],
});

function apiKey(
  name = 'bot',
  {
    uid = `uid-${name}`,
    spec = {},
    status = issued(),
    deleting = false,
  }: { uid?: string; spec?: Partial<ApiKeySpec>; status?: ApiKeyStatus | null; deleting?: boolean } = {},
): ApiKey {
  return {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: {
      name,
      namespace: 'trading',
      uid,
      ...(deleting ? { deletionTimestamp: new Date('2026-01-01T00:00:00Z') } : {}),
    },
    spec: { scopes: ['prices:read'], secretName: 'db', readers: { serviceAccounts: ['app'] }, ...spec },
    ...(status === null ? {} : { status }),
  };
}

/** The ApiKey without a spec.readers field at all. */
function withoutReaders(key: ApiKey): ApiKey {
  const { readers: _readers, ...spec } = key.spec;
  return { ...key, spec };
}

/** A Secret whose controller ownerReference is `uid` (of `kind`); no ownerReference when undefined. */
function secret(uid: string | undefined, { kind = 'ApiKey', controller = true } = {}): SecretLike {
  return {
    metadata: {
      ownerReferences:
        uid === undefined
          ? []
          : [{ apiVersion: 'keyrotor.dev/v1alpha1', kind, name: 'bot', uid, controller }],
    },
  };
}

describe('holdsLiveKey', () => {
  const cases: { name: string; apiKey: ApiKey; secret: SecretLike | undefined; live: boolean }[] = [
    { name: 'Ready=True in a Secret it controls', apiKey: apiKey(), secret: secret('uid-bot'), live: true },
    {
      name: 'Ready=False InvalidSpec: the current key stays in its Secret',
      apiKey: apiKey('bot', { status: issued(ready('False', 'InvalidSpec')) }),
      secret: secret('uid-bot'),
      live: true,
    },
    {
      name: 'Ready=False SecretRejected: the write was refused and the current key stays',
      apiKey: apiKey('bot', { status: issued(ready('False', 'SecretRejected')) }),
      secret: secret('uid-bot'),
      live: true,
    },
    { name: 'no Secret (or one keyrotor does not cache)', apiKey: apiKey(), secret: undefined, live: false },
    { name: 'a Secret nobody owns', apiKey: apiKey(), secret: secret(undefined), live: false },
    { name: 'a Secret another ApiKey controls', apiKey: apiKey(), secret: secret('uid-other'), live: false },
    {
      name: 'an ownerReference with its uid that is not the controller',
      apiKey: apiKey(),
      secret: secret('uid-bot', { controller: false }),
      live: false,
    },
    {
      name: 'a controller of its uid that is not an ApiKey',
      apiKey: apiKey(),
      secret: secret('uid-bot', { kind: 'ApiKeyIssuer' }),
      live: false,
    },
    {
      name: 'Ready=False SecretConflict',
      apiKey: apiKey('bot', { status: issued(ready('False', 'SecretConflict')) }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'Ready=False NotPermitted (the key may stay in the Secret but is not valid)',
      apiKey: apiKey('bot', { status: issued(ready('False', 'NotPermitted')) }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'Ready=False IssuerNotFound',
      apiKey: apiKey('bot', { status: issued(ready('False', 'IssuerNotFound')) }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'Ready=False Revoked',
      apiKey: apiKey('bot', { status: { secretName: 'db', conditions: [ready('False', 'Revoked')] } }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'Ready=False for a reason not known to keep the key',
      apiKey: apiKey('bot', { status: issued(ready('False', 'SomethingNew')) }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'Ready=Unknown',
      apiKey: apiKey('bot', { status: issued(ready('Unknown', 'KeyIssued')) }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'spec.revoked while the status still says Ready=True',
      apiKey: apiKey('bot', { spec: { revoked: true } }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'being deleted',
      apiKey: apiKey('bot', { deleting: true }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'no status yet (the Secret may be written, the key is not recorded)',
      apiKey: apiKey('bot', { status: null }),
      secret: secret('uid-bot'),
      live: false,
    },
    {
      name: 'a Ready condition but no key id in the status',
      apiKey: apiKey('bot', { status: { conditions: [ready('True', 'KeyIssued')] } }),
      secret: secret('uid-bot'),
      live: false,
    },
  ];
  it.each(cases)('$name: $live', ({ apiKey: key, secret: observed, live }) => {
    expect(holdsLiveKey(key, observed)).toBe(live);
  });
});

describe('desiredReaderRbac', () => {
  it('grants exactly the listed readers get and watch on exactly the Secret, owned by the ApiKey, when it owns a live key', () => {
    const rbac = desiredReaderRbac(
      apiKey('bot', { spec: { readers: { serviceAccounts: ['b', 'a', 'b'] } } }),
      true,
    );
    expect(rbac?.role.metadata).toMatchObject({ name: readerRbacName(apiKey()), namespace: 'trading' });
    expect(rbac?.role.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ApiKey', uid: 'uid-bot', controller: true }),
    ]);
    expect(rbac?.role.rules).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['db'], verbs: ['get', 'watch'] },
    ]);
    expect(rbac?.binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'a', namespace: 'trading' },
      { kind: 'ServiceAccount', name: 'b', namespace: 'trading' },
    ]);
    expect(rbac?.binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'keyrotor:bot:readers',
    });
  });

  const none: { name: string; apiKey: ApiKey; ownsLiveKey: boolean }[] = [
    { name: 'it does not own a live key', apiKey: apiKey(), ownsLiveKey: false },
    {
      name: 'it lists no readers',
      apiKey: apiKey('bot', { spec: { readers: { serviceAccounts: [] } } }),
      ownsLiveKey: true,
    },
    { name: 'it has no readers field', apiKey: withoutReaders(apiKey()), ownsLiveKey: true },
    { name: 'it is revoked', apiKey: apiKey('bot', { spec: { revoked: true } }), ownsLiveKey: true },
    { name: 'it is being deleted', apiKey: apiKey('bot', { deleting: true }), ownsLiveKey: true },
  ];
  it.each(none)('grants nothing when $name', ({ apiKey: key, ownsLiveKey }) => {
    expect(desiredReaderRbac(key, ownsLiveKey)).toBeUndefined();
  });
});

describe('desiredReadersData', () => {
  /** Ownership as a Secret's controller ownerReference gives it: one ApiKey uid per Secret name. */
  const ownedBy =
    (owners: Record<string, string>) =>
    (key: ApiKey): boolean =>
      owners[key.spec.secretName ?? key.metadata.name] === key.metadata.uid;

  const cases: {
    name: string;
    apiKeys: ApiKey[];
    owns: (apiKey: ApiKey) => boolean;
    data: Record<string, string>;
  }[] = [
    {
      name: 'an entry per Secret whose ApiKey lists readers and owns a live key',
      apiKeys: [
        apiKey('bot', { spec: { secretName: 'db', readers: { serviceAccounts: ['b', 'a'] } } }),
        withoutReaders(apiKey('open', { spec: { secretName: 'open' } })),
      ],
      owns: () => true,
      data: { db: 'bot;a,b' },
    },
    {
      name: 'no entry for an ApiKey naming a Secret it does not own (SecretConflict)',
      apiKeys: [apiKey('zz', { spec: { secretName: 'postgres-credentials' } })],
      owns: () => false,
      data: {},
    },
    {
      name: "a non-owner sorted after the owner cannot take the owner's entry",
      apiKeys: [
        apiKey('zz-takeover', { spec: { secretName: 'db', readers: { serviceAccounts: ['mine'] } } }),
        apiKey('owner', { spec: { secretName: 'db', readers: { serviceAccounts: ['app'] } } }),
      ],
      owns: ownedBy({ db: 'uid-owner' }),
      data: { db: 'owner;app' },
    },
    {
      name: "a non-owner sorted before the owner cannot take the owner's entry",
      apiKeys: [
        apiKey('owner', { spec: { secretName: 'db', readers: { serviceAccounts: ['app'] } } }),
        apiKey('a-takeover', { spec: { secretName: 'db', readers: { serviceAccounts: ['mine'] } } }),
      ],
      owns: ownedBy({ db: 'uid-owner' }),
      data: { db: 'owner;app' },
    },
    {
      name: 'no entry for a revoked ApiKey, even if told it owns a live key',
      apiKeys: [apiKey('bot', { spec: { revoked: true } })],
      owns: () => true,
      data: {},
    },
    {
      name: 'no entry for an ApiKey being deleted',
      apiKeys: [apiKey('bot', { deleting: true })],
      owns: () => true,
      data: {},
    },
    {
      name: 'the first by name keeps the entry should two pass the ownership check',
      apiKeys: [
        apiKey('b', { spec: { secretName: 'db', readers: { serviceAccounts: ['two'] } } }),
        apiKey('a', { spec: { secretName: 'db', readers: { serviceAccounts: ['one'] } } }),
      ],
      owns: () => true,
      data: { db: 'a;one' },
    },
  ];
  it.each(cases)('$name', ({ apiKeys, owns, data }) => {
    expect(desiredReadersData(apiKeys, owns)).toEqual(data);
  });

  it('asks about every ApiKey that lists readers, with the ApiKey itself', () => {
    const asked: string[] = [];
    desiredReadersData([apiKey('a'), apiKey('b', { spec: { secretName: 'other' } })], (key) => {
      asked.push(key.metadata.name);
      return false;
    });
    expect(asked.sort()).toEqual(['a', 'b']);
  });
});
