// The keyrotor CLI as a user runs it, against the real control plane, its errors included.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateKey, keyId } from '../../operator/src/keys/format.ts';
import { adminKubeConfig, createTestNamespace, tokenKubeConfig } from '../support/kube.ts';
import {
  createApiKey,
  readApiKey,
  startOperator,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';

const cli = path.resolve(import.meta.dirname, '../../operator/src/keyrotor.ts');

function keyrotor(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [cli, ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
    child.stdin?.end(stdin ?? '');
  });
}

describe('the keyrotor CLI', () => {
  const kc = adminKubeConfig();
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: TestOperator;
  let kubeconfig: string;
  const as = (args: string[], stdin?: string) =>
    keyrotor([...args, '--kubeconfig', kubeconfig, '-n', namespace], stdin);

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'cli'));
    kubeconfig = path.join(os.tmpdir(), `${namespace}.kubeconfig`);
    await writeFile(kubeconfig, kc.exportConfig());
    operator = await startOperator(kc, namespace);
    await createApiKey(kc, namespace, 'bot', { rotation: { gracePeriod: '1h' } });
    await waitForReady(kc, namespace, 'bot');
  });
  afterAll(async () => {
    await operator.stop();
    await removeNamespace();
  });

  it('status shows each key with its id, expiry, next rotation and last event', async () => {
    const apiKey = await readApiKey(kc, namespace, 'bot');
    const result = await as(['status']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^NAME\s+READY\s+REASON\s+KEY ID\s+EXPIRES\s+NEXT ROTATION\s+GRACE ENDS\s+LAST EVENT/,
    );
    expect(result.stdout).toMatch(
      new RegExp(
        `^bot\\s+True\\s+KeyIssued\\s+${apiKey.status?.keyId ?? ''}\\s+${apiKey.status?.expiresAt ?? ''}`,
        'm',
      ),
    );
    expect(result.stdout).toContain('Issued ');
    const json = JSON.parse((await as(['status', 'bot', '-o', 'json'])).stdout) as { keyId: string }[];
    expect(json[0]?.keyId).toBe(apiKey.status?.keyId);
  });

  it('rotate waits until the new key is live, and history shows why the old one went', async () => {
    const before = await readApiKey(kc, namespace, 'bot');
    const result = await as(['rotate', 'bot', '--timeout', '30s']);
    expect(result.stderr).toBe('');
    const after = await readApiKey(kc, namespace, 'bot');
    expect(after.status?.keyId).not.toBe(before.status?.keyId);
    expect(result.stdout).toContain(
      `key ${before.status?.keyId ?? ''} replaced by ${after.status?.keyId ?? ''}`,
    );
    expect(result.stdout).toContain('the previous key works until');
    const history = await as(['history', 'bot']);
    expect(history.stdout).toMatch(
      new RegExp(`^${before.status?.keyId ?? ''}\\s+\\S+\\s+\\S+\\s+Manual$`, 'm'),
    );
  });

  it('rotate warns when the key has no grace period, and still rotates it', async () => {
    await createApiKey(kc, namespace, 'graceless', { rotation: { gracePeriod: '0s' } });
    const before = await waitForReady(kc, namespace, 'graceless');
    const result = await as(['rotate', 'graceless', '--timeout', '30s']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('warning: ApiKey graceless has spec.rotation.gracePeriod 0s');
    expect((await readApiKey(kc, namespace, 'graceless')).status?.keyId).not.toBe(before.status?.keyId);
    expect(result.stdout).not.toContain('the previous key works until');
  });

  it('revoke removes the key and records the reason', async () => {
    await createApiKey(kc, namespace, 'leaked');
    await waitForReady(kc, namespace, 'leaked');
    const result = await as(['revoke', 'leaked', '--reason', 'pasted in a chat']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('revoked ApiKey leaked');
    const secret = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name: 'leaked' });
    expect(secret.data?.['api-key']).toBeUndefined();
  });

  it('check says whether a key on stdin is valid, never echoing it', async () => {
    const key = generateKey({ prefix: 'kr', environment: 'production', bits: 256 });
    const good = await keyrotor(['check'], `${key}\n`);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain(
      `valid keyrotor key: prefix kr, environment production, 256 bits, key id ${keyId(key)}`,
    );
    expect(good.stdout + good.stderr).not.toContain(key);
    const bad = await keyrotor(['check'], `${key.slice(0, -2)}xx`);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('checksum mismatch');
    expect(bad.stdout).not.toContain(key.slice(0, -2));
  });

  it('explains a missing key, a missing permission and an unreachable cluster', async () => {
    const missing = await as(['history', 'nobody']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`get ApiKey nobody: not found in namespace ${namespace}`);

    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'nobody' } } });
    const token =
      (
        await core.createNamespacedServiceAccountToken({
          namespace,
          name: 'nobody',
          body: { spec: { audiences: [] } },
        })
      ).status?.token ?? '';
    const weak = path.join(os.tmpdir(), `${namespace}-weak.kubeconfig`);
    await writeFile(weak, tokenKubeConfig(kc, token).exportConfig());
    const denied = await keyrotor(['status', '--kubeconfig', weak, '-n', namespace]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`not allowed to list ApiKeys in namespace ${namespace}`);

    const nowhere = path.join(os.tmpdir(), `${namespace}-nowhere.kubeconfig`);
    const offline = adminKubeConfig();
    const cluster = offline.getCurrentCluster();
    offline.loadFromOptions({
      clusters: [{ ...cluster, name: 'nowhere', server: 'https://127.0.0.1:1' }],
      users: offline.users,
      contexts: [{ name: 'nowhere', cluster: 'nowhere', user: offline.users[0]?.name ?? '' }],
      currentContext: 'nowhere',
    });
    await writeFile(nowhere, offline.exportConfig());
    const unreachable = await keyrotor(['status', '--kubeconfig', nowhere]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('cannot reach the cluster at https://127.0.0.1:1');
  });
});
