import { describe, expect, it } from 'vitest';

import type { ApiKey } from '../api/types.ts';
import { desiredReaderRbac, holdsLiveKey, readerRbacName } from './readers.ts';
import { apiKey, issued, ready, secret, withoutReaders } from './readers.testing.ts';
import type { SecretLike } from './secret.ts';

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
