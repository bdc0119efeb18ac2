// The API server itself refuses bad ApiKeys at apply time, with messages a person understands.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, ISSUER_PLURAL, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKeySpec } from '../../operator/src/api/types.ts';
import { adminKubeConfig, createTestNamespace, failureStatus } from '../support/kube.ts';
import { resolveSpec } from '../../operator/src/reconcile/spec.ts';
import { apiKeyManifest, createApiKey, readApiKey } from '../support/operator.ts';

describe('the ApiKey schema', () => {
  const kc = adminKubeConfig();
  const custom = kc.makeApiClient(CustomObjectsApi);
  let namespace: string;
  let removeNamespace: () => Promise<void>;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'schema'));
  });
  afterAll(async () => {
    await removeNamespace();
  });

  const rejection = async (spec: Partial<ApiKeySpec> | Record<string, unknown>) => {
    const { code, body } = await failureStatus(
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        body: apiKeyManifest(namespace, 'rejected', spec),
      }),
    );
    expect(code).toBe(422);
    return (JSON.parse(body) as { message: string }).message;
  };

  it('fills in the defaults', async () => {
    const created = await createApiKey(kc, namespace, 'defaults');
    expect(created.spec).toEqual({
      scopes: ['prices:read'],
      environment: 'production',
      expiresAfter: '90d',
      keyPrefix: 'kr',
      keyBits: 256,
    });
  });

  it.each([
    [{ scopes: ['Prices Read'] }, 'scope "Prices Read" must look like resource:action in lowercase'],
    [{ scopes: [] }, 'spec.scopes: Invalid value: 0: spec.scopes in body should have at least 1 items'],
    [{ scopes: ['prices:read', 'prices:read'] }, 'Duplicate value: "prices:read"'],
    [
      { expiresAfter: '3 days' },
      '"3 days" is not a duration: write whole days (30d) or hours, minutes and seconds',
    ],
    [{ expiresAfter: '30m' }, 'expiresAfter must be between 1h and 3650d'],
    [{ expiresAfter: '4000d' }, 'expiresAfter must be between 1h and 3650d'],
    [
      { expiresAfter: '30d', rotation: { rotateBefore: '720h' } },
      'rotation.rotateBefore must be shorter than expiresAfter',
    ],
    [
      { expiresAfter: '1d', rotation: { gracePeriod: '48h' } },
      'rotation.gracePeriod must be shorter than expiresAfter',
    ],
    [{ environment: 'prod' }, 'Unsupported value: "prod"'],
    [{ keyBits: 64 }, 'Unsupported value: 64'],
    [{ keyPrefix: 'Bad_Prefix' }, 'keyPrefix "Bad_Prefix" must be 2 to 12 lowercase letters or digits'],
    [{ secretName: 'Not_A_Name' }, 'secretName "Not_A_Name" is not a valid Secret name'],
    [
      { secretTemplate: { labels: { 'keyrotor.dev/apikey': 'x' } } },
      'secretTemplate.labels may not set keys starting with keyrotor.dev/',
    ],
    [
      { secretTemplate: { annotations: { 'app.kubernetes.io/managed-by': 'me' } } },
      'secretTemplate.annotations may not set keys',
    ],
    [{ revocationReason: 'leaked' }, 'revocationReason is only meaningful with revoked: true'],
  ])('refuses %j with a clear message', async (spec, message) => {
    expect(await rejection(spec)).toContain(message);
  });

  // Schedules and time zones: what the API refuses at apply time, naming the field.
  it.each([
    ['0 0 3 * * 1', 'UTC'],
    ['61 * * * *', 'UTC'],
    ['0 24 * * *', 'UTC'],
    ['0 3 32 * *', 'UTC'],
    ['0 3 * 13 *', 'UTC'],
    ['0 3 * * 8', 'UTC'],
    ['@fortnightly', 'UTC'],
    ['every day', 'UTC'],
  ])('refuses schedule "%s" at apply time, naming spec.rotation.schedule', async (schedule, timeZone) => {
    const message = await rejection({ rotation: { schedule, timeZone } });
    expect(message).toContain('spec.rotation.schedule: Invalid value');
    expect(message).toContain(
      `spec.rotation.schedule "${schedule}" is not a cron schedule: write five fields`,
    );
  });

  it('refuses a time zone that is not an IANA name at apply time, naming spec.rotation.timeZone', async () => {
    const message = await rejection({ rotation: { schedule: '0 3 * * 1', timeZone: 'Berlin' } });
    expect(message).toContain(
      'spec.rotation.timeZone "Berlin" is not an IANA time zone: write Area/Location',
    );
  });

  it.each([
    ['@weekly', 'UTC'],
    ['@hourly', 'Europe/Berlin'],
    ['*/15 9-17 * * MON-FRI', 'America/New_York'],
    ['0 3 1,15 * *', 'Asia/Kolkata'],
    ['0  3 * * 1', 'Etc/GMT+5'],
  ])('accepts schedule "%s" in %s, and so does the controller', async (schedule, timeZone) => {
    const name = `schedule-${schedule.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`.replace(/-+$/, '');
    await createApiKey(kc, namespace, name, { rotation: { schedule, timeZone } });
    const created = await readApiKey(kc, namespace, name);
    expect(resolveSpec(created, new Date()).ok).toBe(true);
  });

  // What only the controller can judge: the API admits these, the controller reports InvalidSpec.
  it.each([
    ['0 0 31 2 *', 'UTC', 'never runs'],
    ['0 3 * * 1', 'Europe/Atlantis', 'is not an IANA time zone'],
    ['0 0 1 1 *', 'UTC', 'longer than expiresAfter'],
  ])(
    'admits schedule "%s" in %s, which only the controller refuses (InvalidSpec)',
    async (schedule, timeZone, why) => {
      const name = `judged-${schedule.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${timeZone.length}`.replace(
        /-+$/,
        '',
      );
      await createApiKey(kc, namespace, name, { expiresAfter: '30d', rotation: { schedule, timeZone } });
      const resolved = resolveSpec(await readApiKey(kc, namespace, name), new Date());
      expect(resolved.ok).toBe(false);
      expect(resolved.ok ? '' : resolved.message).toContain(why);
    },
  );

  it.each([
    ['1h', '59m59s'],
    ['1h', '55m1s'],
    ['1d', '23h56m'],
    ['2d', '47h59m'],
  ])(
    'refuses expiresAfter %s with rotateBefore %s (under 5m between rotations), naming spec.rotation.rotateBefore',
    async (expiresAfter, rotateBefore) => {
      const message = await rejection({ expiresAfter, rotation: { rotateBefore } });
      // The error's field path (the rule's fieldPath) and its message both name the field.
      expect(message).toContain('spec.rotation.rotateBefore: Invalid value: ');
      expect(message).toContain(
        `spec.rotation.rotateBefore "${rotateBefore}" leaves less than 5m between automatic rotations of a key with expiresAfter "${expiresAfter}"`,
      );
      expect(message).toContain('rotateBefore may be at most expiresAfter minus 5m');
    },
  );

  it.each([
    ['1h', '55m'],
    ['1h', '30m'],
    ['1d', '23h55m'],
    ['2d', '1d'],
    ['90d', '89d'],
  ])(
    'accepts expiresAfter %s with rotateBefore %s (at least 5m between rotations)',
    async (expiresAfter, rotateBefore) => {
      const name = `interval-${expiresAfter}-${rotateBefore}`;
      await createApiKey(kc, namespace, name, { expiresAfter, rotation: { rotateBefore } });
      expect((await readApiKey(kc, namespace, name)).spec.rotation?.rotateBefore).toBe(rotateBefore);
    },
  );

  it('says only that rotateBefore must be shorter than expiresAfter when it is not', async () => {
    const message = await rejection({ expiresAfter: '1h', rotation: { rotateBefore: '2h' } });
    expect(message).toContain('rotation.rotateBefore must be shorter than expiresAfter');
    expect(message).not.toContain('leaves less than 5m');
  });

  // secretTemplate.data: the data keys and sizes are judged at apply time, the templates by the controller.
  it.each([
    [
      { 'api-key': '{{ .key }}' },
      'secretTemplate.data may not set api-key, key-id, scopes, expires-at or previous-*',
    ],
    [{ 'previous-token': '{{ .previousKey }}' }, 'secretTemplate.data may not set api-key'],
    [{ 'has space': '{{ .key }}' }, 'secretTemplate.data keys must be valid Secret data keys'],
    [{ '..data': '{{ .key }}' }, 'secretTemplate.data keys must be valid Secret data keys'],
    [JSON.parse('{"__proto__": "{{ .key }}"}') as object, 'secretTemplate.data may not set __proto__'],
    [{ [`k${'x'.repeat(253)}`]: '{{ .key }}' }, 'secretTemplate.data keys must be valid Secret data keys'],
    [{ API_KEY: 'x'.repeat(4097) }, 'spec.secretTemplate.data.API_KEY: Too long'],
    [
      Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`K${i}`, '{{ .key }}'])),
      'spec.secretTemplate.data: Too many: 17: must have at most 16 items',
    ],
  ])('refuses secretTemplate.data %j at apply time', async (data, message) => {
    expect(await rejection({ secretTemplate: { data } })).toContain(message);
  });

  it('accepts the most secretTemplate.data the schema allows', async () => {
    const data = Object.fromEntries(
      Array.from({ length: 16 }, (_, i) => [
        `${'k'.repeat(250)}${String(i).padStart(3, '0')}`,
        `${'x'.repeat(4086)}{{ .key }}`,
      ]),
    );
    await createApiKey(kc, namespace, 'most-data', { secretTemplate: { data } });
    expect(resolveSpec(await readApiKey(kc, namespace, 'most-data'), new Date()).ok).toBe(true);
  });

  it.each([
    [
      'unknown-field',
      { API_KEY: '{{ .token }}' },
      'secretTemplate.data["API_KEY"]: line 1, column 1: unknown field ".token"',
    ],
    [
      'unclosed',
      { 'config.yaml': 'api:\n  key: {{ .key\n' },
      'secretTemplate.data["config.yaml"]: line 2, column 8: {{ is never closed',
    ],
    ['pipeline', { API_KEY: '{{ .key | b64enc }}' }, 'pipelines are not supported'],
    ['function', { API_KEY: '{{ printf "%s" .key }}' }, '"printf" is not supported'],
    [
      'too-large',
      Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`F${i}`, '{{ .scopes }}'.repeat(300)])),
      'more than 512 KiB',
    ],
  ])(
    'admits secretTemplate.data that only the controller refuses (InvalidSpec): %s',
    async (name, data, why) => {
      const scopes = Array.from({ length: 32 }, (_, i) => `resource${i}.${'x'.repeat(40)}:read`);
      await createApiKey(kc, namespace, `data-${name}`, { scopes, secretTemplate: { data } });
      const resolved = resolveSpec(await readApiKey(kc, namespace, `data-${name}`), new Date());
      expect(resolved.ok ? '' : resolved.message).toContain(why);
    },
  );

  const createNamed = (plural: string, kind: string, name: string, spec: object) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name, namespace }, spec },
    });

  it.each([
    [PLURAL, 'ApiKey', { scopes: ['prices:read'] }],
    [ISSUER_PLURAL, 'ApiKeyIssuer', { scopes: ['prices:*'] }],
  ])(
    'refuses %s named with 64 characters, which cannot be a label value, naming metadata.name',
    async (plural, kind, spec) => {
      const long = `n${'x'.repeat(63)}`;
      const { code, body } = await failureStatus(createNamed(plural, kind, long, spec));
      expect(code).toBe(422);
      expect((JSON.parse(body) as { message: string }).message).toContain(
        `metadata.name "${long}" is longer than 63 characters: keyrotor puts the name of an ${kind} in a label value`,
      );
      const longest = `m${'x'.repeat(62)}`;
      const created = (await createNamed(plural, kind, longest, spec)) as { metadata: { name: string } };
      expect(created.metadata.name).toBe(longest);
    },
  );

  it('refuses a change of secretName, which would strand the workloads mounting the Secret', async () => {
    await createApiKey(kc, namespace, 'fixed-name', { secretName: 'first' });
    const { code, body } = await failureStatus(
      custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: 'fixed-name',
          body: { spec: { secretName: 'second' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(code).toBe(422);
    expect(body).toContain('spec.secretName cannot be changed');
    expect((await readApiKey(kc, namespace, 'fixed-name')).spec.secretName).toBe('first');
  });
});
