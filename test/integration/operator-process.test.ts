// The operator as users run it: a process with health, readiness and metrics endpoints, that exits
// cleanly on SIGTERM.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { adminKubeConfig, createTestNamespace } from '../support/kube.ts';
import { createApiKey, waitForReady } from '../support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';

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

  it('exits 0 on SIGTERM', async () => {
    expect(await operator.stop()).toBe(0);
  });
});
