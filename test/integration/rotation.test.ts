// Rotation against the real API server. The operator's clock is moved forward instead of waiting:
// keys live hours by the schema's rules, and the tests take seconds.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import { keyId, parseKey } from '../../operator/src/keys/format.ts';
import {
  adminKubeConfig,
  createDeployment,
  createTestNamespace,
  failureStatus,
  writeFreeze,
} from '../support/kube.ts';
import {
  createApiKey,
  eventsFor,
  readApiKey,
  secretValue,
  startOperator,
  waitForEvent,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { waitFor } from '../support/wait.ts';

const MINUTE = 60_000;

describe('rotation', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: TestOperator | undefined;
  let process_: OperatorProcess | undefined;
  /** How far the operator's clock is ahead of the real one. */
  let offsetMs = 0;
  const clock = () => new Date(Date.now() + offsetMs);

  beforeEach(async () => {
    offsetMs = 0;
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'rotation'));
  });
  afterEach(async () => {
    await operator?.stop();
    await process_?.kill();
    operator = undefined;
    process_ = undefined;
    await removeNamespace();
  });

  const start = async () => {
    operator = await startOperator(kc, namespace, { now: clock, restartDebounceMs: 200 });
    return operator;
  };
  /** Moves the operator's clock and makes it look at every ApiKey, as its timers would. */
  const advance = async (ms: number) => {
    offsetMs += ms;
    operator?.controller.resyncNow();
    await operator?.controller.idle();
  };
  const readSecret = (name: string) => core.readNamespacedSecret({ namespace, name });
  const patchApiKey = (name: string, body: object) =>
    custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body },
      mergePatch,
    );

  it('rotates before expiry, keeps the previous key for the grace period, then retires it', async () => {
    await start();
    await createApiKey(kc, namespace, 'grace', {
      expiresAfter: '1h',
      rotation: { rotateBefore: '20m', gracePeriod: '10m' },
    });
    const first = await waitForReady(kc, namespace, 'grace');
    const firstKey = secretValue(await readSecret('grace'), 'api-key');

    await advance(39 * MINUTE);
    expect((await readApiKey(kc, namespace, 'grace')).status?.keyId).toBe(first.status?.keyId);

    await advance(2 * MINUTE);
    const rotated = await waitForReady(kc, namespace, 'grace', { keyIdNot: first.status?.keyId ?? '' });
    const secret = await readSecret('grace');
    expect(secretValue(secret, 'previous-api-key')).toBe(firstKey);
    expect(secretValue(secret, 'previous-key-id')).toBe(first.status?.keyId);
    expect(rotated.status).toMatchObject({ previousKeyId: first.status?.keyId, rotationCount: 1 });
    expect(rotated.status?.history?.[0]).toMatchObject({ keyId: first.status?.keyId, reason: 'Expiry' });
    await waitForEvent(kc, namespace, 'grace', 'Rotated');

    await advance(11 * MINUTE);
    await waitFor(
      async () =>
        secretValue(await readSecret('grace'), 'previous-api-key') === undefined ? true : undefined,
      {
        description: 'the previous key to be retired',
      },
    );
    expect((await readApiKey(kc, namespace, 'grace')).status?.graceEndsAt).toBeUndefined();
    await waitForEvent(kc, namespace, 'grace', 'PreviousKeyRetired');
  });

  it('keeps the previous key for 10m when the spec names no grace period, and none with 0s', async () => {
    await start();
    await createApiKey(kc, namespace, 'default-grace', { expiresAfter: '1h' });
    await createApiKey(kc, namespace, 'no-grace', { expiresAfter: '1h', rotation: { gracePeriod: '0s' } });
    const first = await waitForReady(kc, namespace, 'default-grace');
    const firstNoGrace = await waitForReady(kc, namespace, 'no-grace');
    const firstKey = secretValue(await readSecret('default-grace'), 'api-key');
    await patchApiKey('default-grace', { metadata: { annotations: { 'keyrotor.dev/rotate': 'one' } } });
    await patchApiKey('no-grace', { metadata: { annotations: { 'keyrotor.dev/rotate': 'one' } } });
    const rotated = await waitForReady(kc, namespace, 'default-grace', {
      keyIdNot: first.status?.keyId ?? '',
    });
    const rotatedAt = new Date(rotated.status?.issuedAt ?? 0).getTime();
    expect(new Date(rotated.status?.graceEndsAt ?? 0).getTime() - rotatedAt).toBe(10 * MINUTE);
    expect(secretValue(await readSecret('default-grace'), 'previous-api-key')).toBe(firstKey);

    const noGrace = await waitForReady(kc, namespace, 'no-grace', {
      keyIdNot: firstNoGrace.status?.keyId ?? '',
    });
    expect(noGrace.status?.graceEndsAt).toBeUndefined();
    expect(secretValue(await readSecret('no-grace'), 'previous-api-key')).toBeUndefined();

    await advance(9 * MINUTE);
    expect(secretValue(await readSecret('default-grace'), 'previous-api-key')).toBe(firstKey);
    await advance(2 * MINUTE);
    await waitFor(
      async () =>
        secretValue(await readSecret('default-grace'), 'previous-api-key') === undefined ? true : undefined,
      { description: 'the previous key to be retired when the default grace period ends' },
    );
  });

  it('rotates on its cron schedule', async () => {
    await start();
    await createApiKey(kc, namespace, 'cron', { expiresAfter: '1d', rotation: { schedule: '0 * * * *' } });
    const first = await waitForReady(kc, namespace, 'cron');
    // The next full hour, unless that is sooner than the minimum rotation interval (5m) after issue.
    const issuedAt = new Date(first.status?.issuedAt ?? 0).getTime();
    const nextHour = Math.floor(issuedAt / (60 * MINUTE)) * 60 * MINUTE + 60 * MINUTE;
    const expected = Math.max(nextHour, issuedAt + 5 * MINUTE);
    expect(Math.abs(new Date(first.status?.nextRotationAt ?? 0).getTime() - expected)).toBeLessThan(1_000);
    await advance(61 * MINUTE);
    const rotated = await waitForReady(kc, namespace, 'cron', { keyIdNot: first.status?.keyId ?? '' });
    expect(rotated.status?.history?.[0]?.reason).toBe('Schedule');
  });

  it('rotates exactly once per new value of the keyrotor.dev/rotate annotation, across a restart', async () => {
    await start();
    await createApiKey(kc, namespace, 'manual');
    const first = await waitForReady(kc, namespace, 'manual');
    await patchApiKey('manual', { metadata: { annotations: { 'keyrotor.dev/rotate': 'ticket-42' } } });
    const second = await waitForReady(kc, namespace, 'manual', { keyIdNot: first.status?.keyId ?? '' });
    expect(second.status).toMatchObject({ lastRotateRequest: 'ticket-42', rotationCount: 1 });

    await operator?.stop();
    await start();
    await operator?.controller.idle();
    const after = await readApiKey(kc, namespace, 'manual');
    expect(after.status?.keyId).toBe(second.status?.keyId);
    expect(after.status?.rotationCount).toBe(1);
  });

  it('rotates once, and says Expired, when it starts long after a key was due', async () => {
    await start();
    await createApiKey(kc, namespace, 'overdue', { expiresAfter: '1h' });
    const first = await waitForReady(kc, namespace, 'overdue');
    await operator?.stop();
    offsetMs = 5 * 60 * MINUTE; // five lifetimes later
    await start();
    await operator?.controller.idle();
    const after = await waitForReady(kc, namespace, 'overdue', { keyIdNot: first.status?.keyId ?? '' });
    expect(after.status?.rotationCount).toBe(1);
    const reasons = (await eventsFor(kc, namespace, 'overdue')).map((event) => event.reason);
    expect(reasons.filter((reason) => reason === 'Rotated')).toHaveLength(1);
    expect(reasons).toContain('Expired');
  });

  it('revokes at once, grace period or not, and issues a new key when revoked goes back to false', async () => {
    await start();
    await createApiKey(kc, namespace, 'revoke', { expiresAfter: '1h', rotation: { gracePeriod: '15m' } });
    const first = await waitForReady(kc, namespace, 'revoke');
    await patchApiKey('revoke', { metadata: { annotations: { 'keyrotor.dev/rotate': 'one' } } });
    const second = await waitForReady(kc, namespace, 'revoke', { keyIdNot: first.status?.keyId ?? '' });
    expect(secretValue(await readSecret('revoke'), 'previous-api-key')).toBeDefined();

    await patchApiKey('revoke', { spec: { revoked: true, revocationReason: 'leaked in a ticket' } });
    const revoked = await waitForReady(kc, namespace, 'revoke', { status: 'False', reason: 'Revoked' });
    const secret = await readSecret('revoke');
    expect(Object.keys(secret.data ?? {})).toEqual(['scopes']);
    expect(revoked.status?.keyId).toBeUndefined();
    expect(revoked.status?.history?.[0]).toMatchObject({ keyId: second.status?.keyId, reason: 'Revoked' });
    expect((await waitForEvent(kc, namespace, 'revoke', 'Revoked')).note).toContain('leaked in a ticket');
    const audit = operator?.logLines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.action === 'revoked');
    expect(audit).toMatchObject({ audit: true, keyId: second.status?.keyId });

    await patchApiKey('revoke', { spec: { revoked: false, revocationReason: null } });
    const reinstated = await waitForReady(kc, namespace, 'revoke');
    expect([first.status?.keyId, second.status?.keyId]).not.toContain(reinstated.status?.keyId);
    expect(parseKey(secretValue(await readSecret('revoke'), 'api-key') ?? '').ok).toBe(true);
  });

  it('restarts the workloads named as targets once, even when several keys rotate together', async () => {
    await start();
    const apps = kc.makeApiClient(AppsV1Api);
    await createDeployment(kc, namespace, 'bot');
    const targets = [{ kind: 'Deployment', name: 'bot' }];
    await createApiKey(kc, namespace, 'env-a', { rolloutRestartTargets: targets });
    await createApiKey(kc, namespace, 'env-b', {
      rolloutRestartTargets: [...targets, { kind: 'Deployment', name: 'gone' }],
    });
    await waitForReady(kc, namespace, 'env-a');
    await waitForReady(kc, namespace, 'env-b');
    const before = await apps.readNamespacedDeployment({ namespace, name: 'bot' });
    expect(before.spec?.template.metadata?.annotations?.['keyrotor.dev/restartedAt']).toBeUndefined();

    await Promise.all(
      ['env-a', 'env-b'].map((name) =>
        patchApiKey(name, { metadata: { annotations: { 'keyrotor.dev/rotate': 'x' } } }),
      ),
    );
    await waitForEvent(kc, namespace, 'env-a', 'WorkloadRestarted');
    await waitForEvent(kc, namespace, 'env-b', 'WorkloadRestarted');
    const after = await apps.readNamespacedDeployment({ namespace, name: 'bot' });
    expect(after.spec?.template.metadata?.annotations?.['keyrotor.dev/restartedAt']).toMatch(/^\d{4}-/);
    expect(after.metadata?.generation).toBe((before.metadata?.generation ?? 0) + 1);
    expect((await waitForEvent(kc, namespace, 'env-b', 'WorkloadNotFound')).type).toBe('Warning');
  });

  it('does not rotate twice when killed between the Secret write and the status write', async () => {
    // The API server refuses keyrotor's status writes, so a rotation gets exactly as far as the Secret.
    const freeze = await writeFreeze(
      kc,
      `keyrotor-test-freeze-status-${namespace}`,
      { apiGroups: [GROUP], apiVersions: [VERSION], resources: ['apikeys/status'], operations: ['UPDATE'] },
      `request.namespace != '${namespace}'`,
      'status writes are frozen for this test',
    );
    try {
      const kubeconfig = path.join(os.tmpdir(), `${namespace}.kubeconfig`);
      await writeFile(kubeconfig, kc.exportConfig());
      process_ = await startOperatorProcess(kubeconfig, ['--namespaces', namespace]);
      await createApiKey(kc, namespace, 'crash');
      const first = await waitForReady(kc, namespace, 'crash');

      await freeze.bind();
      // The binding takes effect within moments: wait until a status write is really refused.
      await waitFor(
        async () => {
          const refused = await failureStatus(
            custom.patchNamespacedCustomObjectStatus(
              {
                group: GROUP,
                version: VERSION,
                namespace,
                plural: PLURAL,
                name: 'crash',
                body: { status: { rotationCount: 0 } },
              },
              mergePatch,
            ),
          ).catch(() => undefined);
          return refused?.code === 422 || refused?.code === 403 ? true : undefined;
        },
        { description: 'the status freeze to take effect' },
      );

      await patchApiKey('crash', { metadata: { annotations: { 'keyrotor.dev/rotate': 'before-crash' } } });
      const rotatedKey = await waitFor(
        async () => {
          const id = secretValue(await readSecret('crash'), 'key-id');
          return id !== first.status?.keyId ? id : undefined;
        },
        { description: 'the Secret to hold a new key' },
      );
      await process_.kill();
      process_ = undefined;
      expect((await readApiKey(kc, namespace, 'crash')).status?.keyId).toBe(first.status?.keyId);

      await freeze.remove();
      await start();
      const recovered = await waitForReady(kc, namespace, 'crash', { keyIdNot: first.status?.keyId ?? '' });
      expect(recovered.status?.keyId).toBe(rotatedKey);
      expect(keyId(secretValue(await readSecret('crash'), 'api-key') ?? '')).toBe(rotatedKey);
      expect(recovered.status).toMatchObject({ rotationCount: 1, lastRotateRequest: 'before-crash' });
      expect(recovered.status?.history?.[0]).toMatchObject({ keyId: first.status?.keyId, reason: 'Manual' });
    } finally {
      await freeze.remove();
    }
  });
});
