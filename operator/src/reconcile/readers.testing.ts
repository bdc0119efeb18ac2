// ApiKey and Secret fixtures of the readers and mount-guard tests.
import type { ApiKey, ApiKeySpec, ApiKeyStatus, Condition } from '../api/types.ts';
import type { SecretLike } from './secret.ts';

export const ready = (status: Condition['status'], reason: string): Condition => ({
  type: 'Ready',
  status,
  reason,
  message: 'test',
  lastTransitionTime: '2026-01-01T00:00:00Z',
});

/** The status keyrotor writes once a key is in the Secret, with its Ready condition. */
export const issued = (condition: Condition = ready('True', 'KeyIssued')): ApiKeyStatus => ({
  secretName: 'db',
  keyId: 'kid-1',
  conditions: [condition],
});

export function apiKey(
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
export function withoutReaders(key: ApiKey): ApiKey {
  const { readers: _readers, ...spec } = key.spec;
  return { ...key, spec };
}

/** A Secret whose controller ownerReference is `uid` (of `kind`); no ownerReference when undefined. */
export function secret(uid: string | undefined, { kind = 'ApiKey', controller = true } = {}): SecretLike {
  return {
    metadata: {
      ownerReferences:
        uid === undefined
          ? []
          : [{ apiVersion: 'keyrotor.dev/v1alpha1', kind, name: 'bot', uid, controller }],
    },
  };
}
