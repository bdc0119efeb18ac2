// Scenario 10, secret flood: a tenant gives Secrets of 1,000 KiB each keyrotor's label and type in a
// namespace keyrotor watches (min(--keys, 500) of them). keyrotor must keep only what it would have
// written there, so its memory stays at the floor: the same operator, the same ApiKeys, no flood. The
// figures are the operator's heap used (its own keyrotor_nodejs_heap_size_used_bytes) and resident set,
// after the flood arrived through the watch, and after a restart that lists it (paged).
import { CoreV1Api } from '@kubernetes/client-node';

import { DATA_API_KEY, LABEL_MANAGED_BY, MANAGED_BY_VALUE, SECRET_TYPE } from '../operator/src/api/names.ts';
import { createTenant } from '../test/support/tenant.ts';
import { waitFor } from '../test/support/wait.ts';
import { createApiKeys, createNamespace, watchReady, type OperatorProcess } from './harness.ts';
import { startOperator, type Context, type Result } from './scenarios.ts';

const MAX_SECRETS = 500;
const API_KEYS = 10;
/** Just under the API server's 1 MiB limit on a Secret's data. */
const SECRET_BYTES = 1000 * 1024;
const TIMEOUT_MS = 15 * 60_000;
const MIB = 1024 * 1024;
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

interface Memory {
  readonly heapMiB: number;
  readonly rssMiB: number;
}

/**
 * The lowest of 10 readings over 5 s. Heap used counts garbage not yet collected (the operator is not
 * made to collect), so the low point is the nearest to what is live; the same for the resident set.
 */
async function memory(operator: OperatorProcess): Promise<Memory> {
  let heap = Number.POSITIVE_INFINITY;
  let rss = Number.POSITIVE_INFINITY;
  for (let reading = 0; reading < 10; reading += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    heap = Math.min(heap, (await operator.metric('keyrotor_nodejs_heap_size_used_bytes')) ?? Number.NaN);
    rss = Math.min(rss, await operator.rssMiB());
  }
  return { heapMiB: round(heap / MIB, 1), rssMiB: rss };
}

/** Secrets the operator's cache holds, by its own gauge; it lists or watches them in its own time. */
async function waitForCached(operator: OperatorProcess, count: number): Promise<void> {
  await waitFor(
    async () => (((await operator.metric('keyrotor_secret_cache_objects')) ?? 0) >= count ? true : undefined),
    { description: `${count} Secrets in the operator's cache`, timeoutMs: TIMEOUT_MS, intervalMs: 200 },
  );
}

/**
 * A fresh operator that lists the flood, measured once its cache holds `count`; or why it never got
 * there (an operator that must list every flooded Secret in one response cannot: the response is more
 * than Node can hold as one string, and the list fails each time it is retried).
 */
async function restarted(ctx: Context, namespace: string, count: number, floor: Memory) {
  let operator: OperatorProcess | undefined;
  try {
    operator = await startOperator(ctx, namespace);
    await waitForCached(operator, count);
    const listed = await memory(operator);
    const result: Result = {
      restartHeapMiB: listed.heapMiB,
      restartHeapOverFloor: round(listed.heapMiB / floor.heapMiB),
      restartRssMiB: listed.rssMiB,
      restartPeakRssMiB: await operator.peakRssMiB(),
    };
    return { operator, result };
  } catch (error) {
    await operator?.kill();
    return { operator: undefined, result: { restartFailed: (error as Error).message.slice(0, 200) } };
  }
}

export async function secretFlood(ctx: Context, namespace: string): Promise<Result> {
  const count = Math.min(ctx.keys, MAX_SECRETS);
  await createNamespace(ctx.kc, namespace);
  let operator = await startOperator(ctx, namespace);
  try {
    if ((await operator.metric('keyrotor_secret_cache_objects')) === undefined)
      throw new Error('the operator serves no keyrotor_secret_cache_objects on /metrics');
    const ready = await watchReady(ctx.kc, namespace);
    await createApiKeys(ctx.kc, namespace, API_KEYS);
    await waitFor(() => (ready.readyAt.size >= API_KEYS ? true : undefined), {
      description: `${API_KEYS} ApiKeys Ready`,
      timeoutMs: TIMEOUT_MS,
      intervalMs: 50,
    });
    ready.stop();
    await waitForCached(operator, API_KEYS);
    const floor = await memory(operator);

    const tenant = await createTenant(ctx.kc, namespace);
    const core = tenant.kc.makeApiClient(CoreV1Api);
    // An oversized api-key (a field keyrotor reads) and the rest in a field of the tenant's own.
    const planted = Buffer.alloc(64 * 1024, 'k').toString('base64');
    const blob = Buffer.alloc(SECRET_BYTES - 64 * 1024, 7).toString('base64');
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const name = `flood-${next++}`;
        await core.createNamespacedSecret({
          namespace,
          body: {
            metadata: { name, labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, bench: 'secret-flood' } },
            type: SECRET_TYPE,
            data: { [DATA_API_KEY]: planted, blob },
          },
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await waitForCached(operator, API_KEYS + count);
    const floodSeconds = round((performance.now() - started) / 1000, 1);
    const watched = await memory(operator);
    const cacheBytes = await operator.metric('keyrotor_secret_cache_bytes');
    await operator.stop();

    const restart = await restarted(ctx, namespace, API_KEYS + count, floor);
    if (restart.operator !== undefined) operator = restart.operator;
    // The namespace, not a deletecollection: that answers with every Secret it deleted, 650 MB of JSON.
    await ctx.kc.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace });
    return {
      secrets: count,
      secretKiB: SECRET_BYTES / 1024,
      floodSeconds,
      floorHeapMiB: floor.heapMiB,
      floodHeapMiB: watched.heapMiB,
      heapOverFloor: round(watched.heapMiB / floor.heapMiB),
      floorRssMiB: floor.rssMiB,
      floodRssMiB: watched.rssMiB,
      rssOverFloor: round(watched.rssMiB / floor.rssMiB),
      ...restart.result,
      cacheMiB: cacheBytes === undefined ? null : round(cacheBytes / MIB, 3),
    };
  } finally {
    await operator.stop();
  }
}
