// spec.secretTemplate.data through decide(): what the desired Secret holds across issue, rotation,
// grace, template changes and revocation; what a tenant's edit of a rendered part leads to; and which
// templates are InvalidSpec (reconcile/secret-data.ts).
import { describe, expect, it } from 'vitest';

import { ANNOTATION_RENDERED_DATA, ANNOTATION_ROTATE, ANNOTATION_SEAL, DATA_API_KEY } from '../api/names.ts';
import type { ApiKey, ApiKeySpec } from '../api/types.ts';
import { decide, type Plan } from './decide.ts';
import { keySource } from './key-source.testing.ts';
import { MAX_DATA_TEMPLATES, MAX_TEMPLATE_CHARS } from './secret-data.ts';
import type { SecretLike } from './secret.ts';
import { resolveSpec } from './spec.ts';
import { trustSecret } from './trust.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = new Date('2026-01-01T00:00:00.000Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const decoded = (secret: SecretLike | undefined, field: string) => {
  const value = secret?.data?.[field];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
};

const TEMPLATES = {
  API_KEY: '{{ .key }}',
  'config.yaml': 'api:\n  key: {{ .key }}\n  previous: "{{ .previousKey }}"\n  scopes: {{ .scopes }}\n',
};

function apiKey(spec: Partial<ApiKeySpec> = {}, annotations?: Record<string, string>): ApiKey {
  return {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: {
      name: 'bot',
      namespace: 'trading',
      uid: 'uid-1',
      generation: 1,
      ...(annotations ? { annotations } : {}),
    },
    spec: { scopes: ['prices:read'], expiresAfter: '30d', secretTemplate: { data: TEMPLATES }, ...spec },
  };
}

/** The ApiKey (status written, generation as given) and Secret as the next reconcile sees them. */
function applied(key: ApiKey, plan: Plan, previous?: SecretLike) {
  const manifest = plan.secretWrite?.manifest;
  const secret: SecretLike | undefined = manifest
    ? { ...manifest, metadata: { ...manifest.metadata, uid: 'secret-uid', resourceVersion: '20' } }
    : previous;
  return { apiKey: { ...key, status: plan.status }, secret };
}

function issued(spec: Partial<ApiKeySpec> = {}) {
  const keys = keySource();
  const key = apiKey(spec);
  const plan = decide({ apiKey: key, secret: undefined, now: T0, config: keys });
  return { ...applied(key, plan), keys, plan };
}

/** Every data value of a Secret, decoded. */
const allText = (secret: SecretLike | undefined) =>
  Object.keys(secret?.data ?? {}).map((name) => decoded(secret, name) ?? '');

describe('the desired Secret with secretTemplate.data', () => {
  it('renders each data key beside keyrotor’s own, records them and seals them', () => {
    const { secret, keys } = issued();
    const key = keys.issued[0] ?? '';
    expect(decoded(secret, DATA_API_KEY)).toBe(key);
    expect(decoded(secret, 'API_KEY')).toBe(key);
    expect(decoded(secret, 'config.yaml')).toBe(
      `api:\n  key: ${key}\n  previous: ""\n  scopes: prices:read\n`,
    );
    expect(secret?.metadata?.annotations?.[ANNOTATION_RENDERED_DATA]).toBe('API_KEY,config.yaml');
    expect(secret?.metadata?.annotations?.[ANNOTATION_SEAL]).toMatch(/^v1\.cd\./);
  });

  it('is converged: the next reconcile writes nothing', () => {
    const { apiKey: key, secret, keys } = issued();
    expect(trustSecret(key, secret ?? {}, keys.sealKey).kind).toBe('sealed');
    expect(decide({ apiKey: key, secret, now: later(HOUR), config: keys }).secretWrite).toBeUndefined();
  });

  it('after a rotation with a grace period shows the new key and the old one as previousKey, then drops it', () => {
    const first = issued({ rotation: { gracePeriod: '10m' } });
    const [oldKey = ''] = first.keys.issued;
    const asked = {
      ...first.apiKey,
      metadata: { ...first.apiKey.metadata, annotations: { [ANNOTATION_ROTATE]: '1' } },
    };
    const rotated = decide({ apiKey: asked, secret: first.secret, now: later(HOUR), config: first.keys });
    expect(rotated.replaced).toBe('Manual');
    const after = applied(asked, rotated, first.secret);
    const newKey = first.keys.issued[1] ?? '';
    expect(decoded(after.secret, 'API_KEY')).toBe(newKey);
    expect(decoded(after.secret, 'config.yaml')).toContain(`key: ${newKey}\n  previous: "${oldKey}"`);

    const ended = decide({
      apiKey: after.apiKey,
      secret: after.secret,
      now: later(HOUR + 11 * MINUTE),
      config: first.keys,
    });
    // The grace period ending explains the re-render: nothing was changed outside keyrotor.
    expect(ended.events.map((event) => event.reason)).toEqual(['PreviousKeyRetired']);
    const done = applied(after.apiKey, ended, after.secret).secret;
    expect(decoded(done, 'config.yaml')).toContain(`key: ${newKey}\n  previous: ""`);
    expect(allText(done).some((text) => text.includes(oldKey))).toBe(false);
  });

  it('a template change re-renders without rotating, and strips the data key no longer templated', () => {
    const { apiKey: key, secret, keys } = issued();
    const changed: ApiKey = {
      ...key,
      metadata: { ...key.metadata, generation: 2 },
      spec: { ...key.spec, secretTemplate: { data: { TOKEN: 'Bearer {{ .key }}' } } },
    };
    const plan = decide({ apiKey: changed, secret, now: later(HOUR), config: keys });
    expect(plan.replaced).toBeUndefined();
    expect(keys.issued).toHaveLength(1);
    const write = plan.secretWrite;
    expect(write?.kind === 'apply' && write.strip).toEqual(['data.API_KEY', 'data.config.yaml']);
    expect(decoded(write?.manifest, 'TOKEN')).toBe(`Bearer ${keys.issued[0] ?? ''}`);
    expect(write?.manifest.metadata.annotations[ANNOTATION_RENDERED_DATA]).toBe('TOKEN');
    expect(plan.events).toEqual([]);
  });

  it('revocation leaves no key in any part, rendered or not, and strips the rendered parts', () => {
    const { apiKey: key, secret, keys } = issued();
    const revoked: ApiKey = {
      ...key,
      metadata: { ...key.metadata, generation: 2 },
      spec: { ...key.spec, revoked: true },
    };
    const plan = decide({ apiKey: revoked, secret, now: later(HOUR), config: keys });
    const write = plan.secretWrite;
    expect(write?.kind === 'apply' && write.strip).toEqual(['data.API_KEY', 'data.config.yaml']);
    expect(Object.keys(write?.manifest.data ?? {})).toEqual(['scopes']);
    expect(write?.manifest.metadata.annotations[ANNOTATION_RENDERED_DATA]).toBeUndefined();
    expect(allText(write?.manifest).join('')).not.toContain(keys.issued[0] ?? '');
  });

  it('revocation goes through even when the template is broken', () => {
    const { apiKey: key, secret, keys } = issued();
    const revoked: ApiKey = {
      ...key,
      metadata: { ...key.metadata, generation: 2 },
      spec: { ...key.spec, revoked: true, secretTemplate: { data: { API_KEY: '{{ .nope }}' } } },
    };
    const write = decide({ apiKey: revoked, secret, now: later(HOUR), config: keys }).secretWrite;
    expect(write?.kind === 'apply' && write.strip).toEqual(['data.API_KEY', 'data.config.yaml']);
    expect(allText(write?.manifest).join('')).not.toContain(keys.issued[0] ?? '');
  });
});

describe('a tenant writing rendered parts', () => {
  it('an edited rendered part is tampering: a fresh key, rendered everywhere, no grace', () => {
    const { apiKey: key, secret, keys } = issued();
    const edited = { ...secret, data: { ...secret?.data, 'config.yaml': b64('api:\n  key: mine\n') } };
    expect(trustSecret(key, edited, keys.sealKey).kind).toBe('tampered');
    const plan = decide({ apiKey: key, secret: edited, now: later(HOUR), config: keys });
    expect(plan.replaced).toBe('Drift');
    expect(plan.events.map((event) => event.reason)).toContain('SecretTampered');
    const fresh = keys.issued[1] ?? '';
    expect(decoded(plan.secretWrite?.manifest, 'config.yaml')).toContain(`key: ${fresh}\n  previous: ""`);
    expect(JSON.stringify(plan.events)).not.toContain(fresh);
  });

  it.each([
    ['a rendered part deleted', (s: SecretLike) => ({ ...s, data: withoutKey(s.data ?? {}, 'API_KEY') })],
    ['a name dropped from the record', (s: SecretLike) => withRecord(s, 'config.yaml')],
    ['a name added to the record', (s: SecretLike) => withRecord(s, 'API_KEY,config.yaml,mine')],
  ])('%s is tampering', (_what, edit) => {
    const { apiKey: key, secret, keys } = issued();
    const observed = edit(JSON.parse(JSON.stringify(secret)) as SecretLike);
    expect(trustSecret(key, observed, keys.sealKey).kind).toBe('tampered');
  });

  it('a record planted on a Secret keyrotor rendered nothing into is ignored and stripped, the key kept', () => {
    const { apiKey: key, secret, keys } = issued({ secretTemplate: {} });
    const planted = withRecord({ ...secret, data: { ...secret?.data, mine: b64('x') } }, 'mine');
    const trust = trustSecret(key, planted, keys.sealKey);
    expect(trust.kind === 'sealed' && trust.ignored).toEqual([`annotations.${ANNOTATION_RENDERED_DATA}`]);
    const plan = decide({ apiKey: key, secret: planted, now: later(HOUR), config: keys });
    expect(plan.replaced).toBeUndefined();
    const write = plan.secretWrite;
    expect(write?.kind === 'apply' && write.strip).toEqual([`annotations.${ANNOTATION_RENDERED_DATA}`]);
  });
});

describe('names that are properties of every JavaScript object', () => {
  // A Secret as the API server serves it, parsed from JSON: data holds only what was written.
  const served = (secret: SecretLike | undefined) => JSON.parse(JSON.stringify(secret)) as SecretLike;

  it.each(['toString', 'constructor', 'hasOwnProperty', '__proto__'])(
    'a record naming %s on a rendered Secret is tampering, never a crash',
    (name) => {
      const { apiKey: key, secret, keys } = issued();
      const observed = served(withRecord(served(secret), `API_KEY,${name}`));
      expect(trustSecret(key, observed, keys.sealKey).kind).toBe('tampered');
      const plan = decide({ apiKey: key, secret: observed, now: later(HOUR), config: keys });
      expect(plan.events.map((event) => event.reason)).toContain('SecretTampered');
    },
  );

  it.each(['toString', 'constructor'])(
    'a record naming %s on a revoked key still lets it be revoked',
    (name) => {
      const { apiKey: key, secret, keys } = issued();
      const observed = served(withRecord(served(secret), name));
      const revoked: ApiKey = { ...key, spec: { ...key.spec, revoked: true } };
      const plan = decide({ apiKey: revoked, secret: observed, now: later(HOUR), config: keys });
      expect(allText(plan.secretWrite?.manifest).join('\n')).not.toContain(keys.issued[0] ?? '');
      expect(plan.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'Revoked' });
    },
  );

  it('a template may render into "constructor", and it is written and checked like any other part', () => {
    const {
      apiKey: key,
      secret,
      keys,
    } = issued({ secretTemplate: { data: { constructor: '{{ .keyId }}' } } });
    expect(decoded(secret, 'constructor')).toBe(key.status.keyId);
    expect(trustSecret(key, served(secret), keys.sealKey).kind).toBe('sealed');
    const plan = decide({ apiKey: key, secret: served(secret), now: later(HOUR), config: keys });
    expect(plan.secretWrite).toBeUndefined();
  });
});

function withoutKey(data: Record<string, string>, name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(data).filter(([key]) => key !== name));
}

function withRecord(secret: SecretLike, record: string): SecretLike {
  const annotations = { ...secret.metadata?.annotations, [ANNOTATION_RENDERED_DATA]: record };
  return { ...secret, metadata: { ...secret.metadata, annotations } };
}

describe('secretTemplate.data the controller refuses (InvalidSpec)', () => {
  const many = Object.fromEntries(Array.from({ length: MAX_DATA_TEMPLATES + 1 }, (_, i) => [`K${i}`, 'x']));
  const scopes = Array.from(
    { length: 32 },
    (_, i) => `resource${String(i).padStart(2, '0')}.${'x'.repeat(40)}:read`,
  );
  it.each([
    [{ API_KEY: '{{ .token }}' }, 'secretTemplate.data["API_KEY"]: line 1, column 1: unknown field ".token"'],
    [
      { 'config.yaml': 'a:\n  b: {{ .key' },
      'secretTemplate.data["config.yaml"]: line 2, column 6: {{ is never closed',
    ],
    [
      { API_KEY: '{{ .key | b64enc }}' },
      'secretTemplate.data["API_KEY"]: line 1, column 1: pipelines are not supported',
    ],
    [{ 'api-key': '{{ .key }}' }, `secretTemplate.data["api-key"] is one of keyrotor's own data keys`],
    [{ 'previous-token': '{{ .key }}' }, 'secretTemplate.data["previous-token"] is one of keyrotor'],
    [{ 'has space': 'x' }, 'secretTemplate.data["has space"] is not a valid Secret data key'],
    [{ '..data': 'x' }, 'secretTemplate.data["..data"] is not a valid Secret data key'],
    [JSON.parse('{"__proto__": "{{ .key }}"}') as Record<string, string>, '"__proto__"] is reserved'],
    [{ [`k${'x'.repeat(253)}`]: 'x' }, 'is longer than 253 characters'],
    [
      { API_KEY: 'x'.repeat(MAX_TEMPLATE_CHARS + 1) },
      'secretTemplate.data["API_KEY"] is longer than 4096 characters',
    ],
    [many, 'secretTemplate.data has 17 entries, more than 16'],
  ])('%j', (data, message) => {
    const resolved = resolveSpec(apiKey({ secretTemplate: { data } }), T0);
    expect(resolved.ok ? '' : resolved.message).toContain(message);
  });

  it('refuses templates that could render past 512 KiB, before anything is rendered', () => {
    const data = Object.fromEntries(
      Array.from({ length: 16 }, (_, i) => [`F${i}`, '{{ .scopes }}'.repeat(300)]),
    );
    const resolved = resolveSpec(apiKey({ scopes, secretTemplate: { data } }), T0);
    expect(resolved.ok ? '' : resolved.message).toMatch(/could render to \d+ KiB, more than 512 KiB/);
  });

  it('keeps the key and its Secret as they are, and says nothing of the key', () => {
    const { apiKey: key, secret, keys } = issued();
    const broken: ApiKey = {
      ...key,
      metadata: { ...key.metadata, generation: 2 },
      spec: { ...key.spec, secretTemplate: { data: { API_KEY: '{{ .key }', 'config.yaml': '{{ .key }}' } } },
    };
    const plan = decide({ apiKey: broken, secret, now: later(HOUR), config: keys });
    expect(plan.secretWrite).toBeUndefined();
    expect(plan.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(plan.status.conditions?.[0]?.message).toContain(
      'secretTemplate.data["API_KEY"]: line 1, column 1',
    );
    expect(plan.events[0]?.type).toBe('Warning');
    expect(JSON.stringify([plan.status, plan.events, plan.audit])).not.toContain(keys.issued[0] ?? '');
  });
});
