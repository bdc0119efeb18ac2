// Rendered data parts (spec.secretTemplate.data) in keyrotor's Secret cache: held as digests, never as
// key material, and keyrotor decides on them as on the Secret the API server serves.
import { describe, expect, it } from 'vitest';

import { ANNOTATION_RENDERED_DATA } from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import { decide } from '../reconcile/decide.ts';
import { keySource } from '../reconcile/key-source.testing.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { trustSecret } from '../reconcile/trust.ts';
import { cachedSecretView } from './secret-cache.ts';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

const apiKey: ApiKey = {
  apiVersion: 'keyrotor.dev/v1alpha1',
  kind: 'ApiKey',
  metadata: { name: 'bot', namespace: 'trading', uid: 'uid-1', generation: 1 },
  spec: {
    scopes: ['prices:read'],
    expiresAfter: '30d',
    secretTemplate: { data: { API_KEY: '{{ .key }}', 'config.yaml': 'key: {{ .key }}\n' } },
  },
};

function issued() {
  const keys = keySource();
  const plan = decide({ apiKey, secret: undefined, now: T0, config: keys });
  const manifest = plan.secretWrite?.manifest;
  const secret: SecretLike = {
    ...manifest,
    metadata: { ...manifest?.metadata, uid: 's', resourceVersion: '1' },
  };
  return { keys, secret, apiKey: { ...apiKey, status: plan.status } };
}

describe('rendered parts in the Secret cache', () => {
  it('are held as digests: no key material, whatever their size', () => {
    const { keys, secret } = issued();
    const view = cachedSecretView(secret);
    expect(view.data?.API_KEY).toMatch(/^#sha256:[0-9a-f]{64}$/);
    expect(view.data?.['config.yaml']).toMatch(/^#sha256:[0-9a-f]{64}$/);
    const rendered = [view.data?.API_KEY, view.data?.['config.yaml']].join();
    expect(rendered).not.toContain(b64(keys.issued[0] ?? ''));
    const huge: SecretLike = cachedSecretView({
      ...secret,
      data: { ...secret.data, API_KEY: 'A'.repeat(1 << 20) },
    });
    expect(huge.data?.API_KEY).toHaveLength('#sha256:'.length + 64);
  });

  it('only those the record names, and never on a Secret no ApiKey controls', () => {
    const { secret } = issued();
    const withOther: SecretLike = { ...secret, data: { ...secret.data, other: b64('x') } };
    expect(cachedSecretView(withOther).data?.other).toBeUndefined();
    const uncontrolled = { ...secret, metadata: { ...secret.metadata, ownerReferences: [] } };
    expect(cachedSecretView(uncontrolled).data?.API_KEY).toBeUndefined();
    const annotations = { ...secret.metadata?.annotations, [ANNOTATION_RENDERED_DATA]: 'API_KEY' };
    const fewer = cachedSecretView({ ...secret, metadata: { ...secret.metadata, annotations } });
    expect(fewer.data?.['config.yaml']).toBeUndefined();
  });

  it('decide the same as the Secret served: sealed, converged, an edit is tampering', () => {
    const { keys, secret, apiKey: key } = issued();
    const view = cachedSecretView(secret);
    expect(trustSecret(key, view, keys.sealKey).kind).toBe('sealed');
    expect(decide({ apiKey: key, secret: view, now: T0, config: keys }).secretWrite).toBeUndefined();
    const edited = cachedSecretView({ ...secret, data: { ...secret.data, API_KEY: b64('mine') } });
    expect(trustSecret(key, edited, keys.sealKey).kind).toBe('tampered');
  });
});
