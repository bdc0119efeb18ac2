// The operator as users run it: a process with health, readiness and metrics endpoints, that exits
// cleanly on SIGTERM.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { adminKubeConfig, createTestNamespace, tokenKubeConfig } from '../support/kube.ts';
import { createApiKey, waitForReady } from '../support/operator.ts';
import { freePort, startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { waitFor } from '../support/wait.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');

describe('the operator process', () => {
  const kc = adminKubeConfig();
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let operator: OperatorProcess;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'process'));
    const kubeconfig = path.join(os.tmpdir(), `${namespace}.kubeconfig`);
    await writeFile(kubeconfig, kc.exportConfig());
    operator = await startOperatorProcess(kubeconfig, ['--namespaces', namespace]);
  });
  afterAll(async () => {
    await operator.kill();
    await removeNamespace();
  });

  it('serves /healthz, /readyz once its caches synced, and /metrics', async () => {
    await createApiKey(kc, namespace, 'metered');
    await waitForReady(kc, namespace, 'metered');
    expect((await fetch(`${operator.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${operator.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${operator.url}/metrics`)).text();
    expect(metrics).toMatch(/^keyrotor_reconcile_total\{result="success"\} [1-9]/m);
    expect(metrics).toMatch(
      new RegExp(
        `^keyrotor_apikey_expiration_timestamp_seconds\\{namespace="${namespace}",name="metered"\\} \\d+`,
        'm',
      ),
    );
    expect(metrics).toMatch(/^keyrotor_apikeys\{ready="True",reason="KeyIssued"\} 1$/m);
    expect(metrics).toMatch(/^keyrotor_api_requests_total\{method="PATCH"\} \d+/m);
    expect(metrics).toContain('keyrotor_nodejs_eventloop_lag_seconds');
  });

  it('answers /readyz 503 while its caches cannot sync, then 200 once they have', async () => {
    // An identity that may keep the seal key but list nothing: no cache can sync until it is granted.
    const core = kc.makeApiClient(CoreV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const account = 'not-yet-granted';
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: account } } });
    const subjects = [{ kind: 'ServiceAccount', name: account, namespace }];
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: account },
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: account },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: account },
        subjects,
      },
    });
    const token =
      (
        await core.createNamespacedServiceAccountToken({
          namespace,
          name: account,
          body: { spec: { expirationSeconds: 3600, audiences: [] } },
        })
      ).status?.token ?? '';
    const kubeconfig = path.join(os.tmpdir(), `${namespace}-${account}.kubeconfig`);
    await writeFile(kubeconfig, tokenKubeConfig(kc, token).exportConfig());
    const url = `http://127.0.0.1:${await freePort()}`;
    // Started here, not by startOperatorProcess, which returns only once /readyz says 200.
    const child = spawn(
      'setpriv',
      [
        '--pdeathsig', 'KILL', '--', process.execPath, path.join(repoRoot, 'operator/src/main.ts'),
        '--kubeconfig', kubeconfig, '--bind-address', url.slice('http://'.length), '--metrics-auth=false',
        '--namespaces', namespace, `--seal-secret=${namespace}/keyrotor-seal`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ); // prettier-ignore
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const messages: string[] = [];
    createInterface(child.stdout).on('line', (line) => {
      try {
        messages.push(String((JSON.parse(line) as { msg?: unknown }).msg));
      } catch {
        messages.push(line);
      }
    });
    const status = async (endpoint: string) =>
      (await fetch(`${url}${endpoint}`).catch(() => undefined))?.status;
    const binding = `keyrotor-test-${namespace}`;
    try {
      // Serving, its informers started and refused: the caches cannot have synced.
      await waitFor(
        async () =>
          (await status('/healthz')) === 200 && messages.includes('watch failed; restarting')
            ? true
            : undefined,
        { description: 'the operator to serve and its first list to be refused' },
      );
      expect(await status('/readyz')).toBe(503);
      expect(messages).not.toContain('caches synced');

      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: binding },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects,
        },
      });
      await waitFor(async () => ((await status('/readyz')) === 200 ? true : undefined), {
        description: 'the operator to become ready once it may list',
        timeoutMs: 60_000,
      });
      expect(messages).toContain('caches synced');
    } finally {
      child.kill('SIGKILL');
      await exited;
      await rbac.deleteClusterRoleBinding({ name: binding }).catch(() => undefined);
    }
  });

  it('exits 0 on SIGTERM', async () => {
    expect(await operator.stop()).toBe(0);
  });
});
