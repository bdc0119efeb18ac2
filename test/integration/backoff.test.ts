// Backoff that holds (issue 17): when the API server refuses the key Secret (an admission policy, a
// quota, RBAC), keyrotor's own status write must not wake the ApiKey again at once. Retries back off
// exponentially, each with one short log line.
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  adminKubeConfig,
  createTestNamespace,
  failureStatus,
  writeFreeze,
  type WriteFreeze,
} from '../support/kube.ts';
import {
  createApiKey,
  readApiKey,
  startOperator,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { waitFor } from '../support/wait.ts';

/** Attempts counted, and the least time they may take after the first (less than 6.2 s, for timer slack). */
const ATTEMPTS = 6;
const MIN_ELAPSED_MS = 5_000;

describe('a refused Secret write', () => {
  const kc = adminKubeConfig();
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};
  let freeze: WriteFreeze | undefined;
  let operator: TestOperator | undefined;

  beforeAll(async () => {
    const created = await createTestNamespace(kc, 'backoff');
    namespace = created.name;
    removeNamespace = created.remove;
    freeze = await writeFreeze(
      kc,
      `keyrotor-test-refuse-secrets-${namespace}`,
      { apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'], operations: ['CREATE', 'UPDATE'] },
      `request.namespace != '${namespace}'`,
      'Secrets are refused in this namespace for this test',
    );
    await freeze.bind();
    const core = kc.makeApiClient(CoreV1Api);
    await waitFor(
      async () => {
        const refused = await failureStatus(
          core.createNamespacedSecret({ namespace, body: { metadata: { name: 'probe' } }, dryRun: 'All' }),
        ).catch(() => undefined);
        return refused?.code === 403 || refused?.code === 422 ? true : undefined;
      },
      { description: 'the Secret refusal to take effect' },
    );
    operator = await startOperator(kc, namespace);
  });
  afterAll(async () => {
    await operator?.stop();
    await freeze?.remove();
    await removeNamespace();
  });

  it('backs off exponentially instead of looping on its own status write, one short log line per attempt', async () => {
    const before = operator?.logLines.length ?? 0;
    await createApiKey(kc, namespace, 'refused');
    await waitForReady(kc, namespace, 'refused', { status: 'False', reason: 'SecretRejected' });
    const started = Date.now();
    // From the first refusal, attempts 2 to 6 come after 200 + 400 + 800 + 1600 + 3200 ms of backoff
    // (the queue's 200 ms, doubling): 6.2 s. The hot loop made about 25 attempts a second.
    await waitFor(
      async () =>
        ((await readApiKey(kc, namespace, 'refused')).status?.failedAttempts ?? 0) >= ATTEMPTS || undefined,
      { description: `${ATTEMPTS} failed attempts`, timeoutMs: 60_000, intervalMs: 50 },
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(MIN_ELAPSED_MS);
    const retries = (operator?.logLines ?? []).slice(before).filter((line) => line.includes('will retry'));
    expect(retries.length).toBeGreaterThanOrEqual(ATTEMPTS - 1);
    expect(retries.length).toBeLessThanOrEqual(ATTEMPTS + 1);
    for (const line of retries) {
      expect(line.length).toBeLessThan(1_000);
      expect(line).not.toContain('    at ');
    }
  });
});
