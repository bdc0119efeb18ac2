import type { ApiKey, ApiKeySpec } from '../api/types.ts';
import type { Plan } from '../reconcile/decide.ts';
import type { SecretLike } from '../reconcile/secret.ts';

let uid = 0;

/** A consumer ApiKey of issuer market-data/prices, with a uid of its own (tests of the issuer layer). */
export function consumerApiKey(name: string, spec: Partial<ApiKeySpec> = {}, namespace = 'trading'): ApiKey {
  uid += 1;
  return {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name, namespace, uid: `key-uid-${uid}`, generation: 1 },
    spec: {
      scopes: ['prices:read'],
      expiresAfter: '1h',
      rotation: { rotateBefore: '20m', gracePeriod: '10m' },
      issuerRef: { namespace: 'market-data', name: 'prices' },
      ...spec,
    },
  };
}

/** The Secret a plan wrote, as the next reconcile sees it. */
export function secretOf(plan: Plan, resourceVersion = '20'): SecretLike | undefined {
  const manifest = plan.secretWrite?.manifest;
  return manifest && { ...manifest, metadata: { ...manifest.metadata, uid: 'secret-uid', resourceVersion } };
}
