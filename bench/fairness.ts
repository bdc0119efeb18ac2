// Scenario 9, fairness: while every key of one namespace rotates at once (on-demand, N of them), a new
// key in another namespace must not wait behind them all. The work queue serves namespaces in turn; the
// figure is the quiet namespace's create-to-Ready time, beside the queue depth when it was created.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

import { ANNOTATION_ROTATE, GROUP, PLURAL, VERSION } from '../operator/src/api/names.ts';
import { apiKeyManifest } from '../test/support/operator.ts';
import { startOperatorProcess } from '../test/support/operator-process.ts';
import { waitFor } from '../test/support/wait.ts';
import { createApiKeys, createNamespace, watchReady } from './harness.ts';
import { operatorMetric, type Context, type Result } from './scenarios.ts';

const TIMEOUT_MS = 30 * 60_000;

export async function fairness(ctx: Context, prefix: string): Promise<Result> {
  const busy = `${prefix}-busy`;
  const quiet = `${prefix}-quiet`;
  await createNamespace(ctx.kc, busy);
  await createNamespace(ctx.kc, quiet);
  const operator = await startOperatorProcess(ctx.operatorKubeconfig, [
    '--namespaces',
    `${busy},${quiet}`,
    '--log-level',
    'warn',
  ]);
  try {
    const busyReady = await watchReady(ctx.kc, busy);
    await createApiKeys(ctx.kc, busy, ctx.keys);
    await waitFor(() => (busyReady.readyAt.size >= ctx.keys ? true : undefined), {
      description: `${ctx.keys} busy keys Ready`,
      timeoutMs: TIMEOUT_MS,
      intervalMs: 100,
    });
    busyReady.stop();
    const custom = ctx.kc.makeApiClient(CustomObjectsApi);
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const names = Array.from({ length: ctx.keys }, (_, index) => `bench-${index}`);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let name = names.shift(); name !== undefined; name = names.shift()) {
          await custom.patchNamespacedCustomObject(
            {
              group: GROUP,
              version: VERSION,
              namespace: busy,
              plural: PLURAL,
              name,
              body: { metadata: { annotations: { [ANNOTATION_ROTATE]: 'fairness' } } },
            },
            merge,
          );
        }
      }),
    );
    const depth = await operatorMetric(operator, /^keyrotor_workqueue_depth /);
    const quietReady = await watchReady(ctx.kc, quiet);
    const createdAt = performance.now();
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: quiet,
      plural: PLURAL,
      body: apiKeyManifest(quiet, 'newcomer'),
    });
    await waitFor(() => quietReady.readyAt.get('newcomer'), {
      description: 'the quiet namespace key Ready',
      timeoutMs: TIMEOUT_MS,
      intervalMs: 20,
    });
    const readyAt = quietReady.readyAt.get('newcomer') ?? Number.NaN;
    quietReady.stop();
    await waitFor(
      async () => ((await operatorMetric(operator, /^keyrotor_workqueue_depth /)) === 0 ? true : undefined),
      { description: 'the busy namespace rotated', timeoutMs: TIMEOUT_MS, intervalMs: 200 },
    );
    return {
      keys: ctx.keys,
      busyQueueDepthAtCreate: depth,
      quietCreateToReadyMs: Math.round(readyAt - createdAt),
      busyAllRotatedSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    };
  } finally {
    await operator.stop();
  }
}
