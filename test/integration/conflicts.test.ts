// SecretConflict resolves on its own (issue 17): keyrotor does not watch Secrets it does not own, so it
// asks again about the Secret an ApiKey names while it conflicts. Deleting that Secret, or annotating it
// for adoption as the condition advises, reaches the ApiKey within seconds, without an edit of the ApiKey.
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { adminKubeConfig, createTestNamespace } from '../support/kube.ts';
import { createApiKey, startOperator, waitForReady, type TestOperator } from '../support/operator.ts';

/** The longest a resolved conflict may take to be seen: the first polls come after 2 s and 4 s. */
const WITHIN_MS = 10_000;

describe('a Secret conflict', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};
  let operator: TestOperator | undefined;

  beforeAll(async () => {
    const created = await createTestNamespace(kc, 'conflicts');
    namespace = created.name;
    removeNamespace = created.remove;
    operator = await startOperator(kc, namespace);
  });
  afterAll(async () => {
    await operator?.stop();
    await removeNamespace();
  });

  const conflict = async (name: string) => {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name }, stringData: { password: 'not-a-real-password' } },
    });
    await createApiKey(kc, namespace, name);
    await waitForReady(kc, namespace, name, { status: 'False', reason: 'SecretConflict' });
  };

  it('clears once the conflicting Secret is deleted', async () => {
    await conflict('deleted-later');
    await core.deleteNamespacedSecret({ namespace, name: 'deleted-later' });
    const ready = await waitForReady(kc, namespace, 'deleted-later', { timeoutMs: WITHIN_MS });
    expect(ready.status?.keyId).toBeDefined();
  });

  it('clears once the conflicting Secret is annotated for adoption', async () => {
    await conflict('adopted-later');
    await core.patchNamespacedSecret(
      {
        namespace,
        name: 'adopted-later',
        body: { metadata: { annotations: { 'keyrotor.dev/adopt': 'true' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const ready = await waitForReady(kc, namespace, 'adopted-later', { timeoutMs: WITHIN_MS });
    expect(ready.status?.keyId).toBeDefined();
  });
});
