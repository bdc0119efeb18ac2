// The benchmark scenarios 1, 3, 4, 6 and 7 (the floor is bench/floor.ts, the storms bench/storm.ts).
// Each measures from outside the operator: bench/measure.ts.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';

import { GROUP, PLURAL, VERSION } from '../operator/src/api/names.ts';
import { apiKeyManifest } from '../test/support/operator.ts';
import type { OperatorProcess } from '../test/support/operator-process.ts';
import { waitFor } from '../test/support/wait.ts';
import { createApiKeys, createNamespace, percentile, watchReady } from './harness.ts';
import {
  READY_TIMEOUT_MS,
  convergeSeconds,
  convergeWritten,
  counted,
  eventLoopLagP99Ms,
  limitFlags,
  probe,
  reconciles,
  round,
  settled,
  since,
  startOperator,
  type Context,
  type Limit,
  type Result,
} from './measure.ts';

export { operatorMetric, startOperator, type Context, type Result } from './measure.ts';

/**
 * 1: N ApiKeys created in a burst, until the last key's writes are done (its Event too), at `limit`.
 * Leaves the operator running for 3 and 4.
 */
export async function converge(
  ctx: Context,
  namespace: string,
  limit: Limit,
): Promise<{ result: Result; operator: OperatorProcess }> {
  await createNamespace(ctx.kc, namespace);
  const operator = await startOperator(ctx, namespace, limitFlags(limit));
  const ready = await watchReady(ctx.kc, namespace);
  const before = await probe(ctx, operator);
  const createdAt = await createApiKeys(ctx.kc, namespace, ctx.keys);
  await waitFor(() => (ready.readyAt.size >= ctx.keys ? true : undefined), {
    description: `${ctx.keys} ApiKeys Ready`,
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: 50,
  });
  ready.stop();
  // Read before the waits below scrape /metrics: each scrape restarts the lag histogram.
  const eventLoopLag = await eventLoopLagP99Ms(operator);
  await convergeWritten(ctx, operator, before.mark);
  const latencies = [...createdAt].map(([name, at]) => (ready.readyAt.get(name) ?? Number.NaN) - at);
  const measured = await since(ctx, operator, before);
  const wallSeconds = convergeSeconds(await ctx.audit.since(before.mark), 'operator');
  return {
    operator,
    result: {
      ...measured,
      wallSeconds,
      eventLoopLagP99Ms: eventLoopLag,
      configuredQps: limit.qps,
      keysPerSecond: round(ctx.keys / wallSeconds, 1),
      createToReadyMs: {
        p50: Math.round(percentile(latencies, 50)),
        p99: Math.round(percentile(latencies, 99)),
      },
    },
  };
}

/** 3: after convergence, a full relist and resync (SIGHUP): the writes it causes (target zero). */
export async function steady(ctx: Context, operator: OperatorProcess): Promise<Result> {
  const before = await probe(ctx, operator);
  const reconciled = await reconciles(operator);
  operator.signal('SIGHUP');
  await settled(operator, reconciled, ctx.keys);
  return since(ctx, operator, before);
}

/** 4: a new operator process over N existing keys: time until ready and until all are looked at; writes (target zero). */
export async function restart(
  ctx: Context,
  namespace: string,
  operator: OperatorProcess,
  limit: Limit,
): Promise<{ result: Result; operator: OperatorProcess }> {
  await operator.stop();
  const started = performance.now();
  const mark = await ctx.audit.mark();
  const next = await startOperator(ctx, namespace, limitFlags(limit));
  const readySeconds = round((performance.now() - started) / 1000, 3);
  await settled(next, 0, ctx.keys);
  const allReconciledSeconds = round((performance.now() - started) / 1000, 3);
  return {
    operator: next,
    result: {
      readySeconds,
      allReconciledSeconds,
      ...counted(await ctx.audit.since(mark)),
      operatorCpuSeconds: await next.cpuSeconds(),
      operatorPeakRssMiB: await next.peakRssMiB(),
    },
  };
}

/** 6: the operator's memory with and without 500 unrelated ~1 MiB Secrets in its namespace (target: no growth). */
export async function unrelated(ctx: Context, namespace: string): Promise<Result> {
  await createNamespace(ctx.kc, namespace);
  const operator = await startOperator(ctx, namespace);
  try {
    const ready = await watchReady(ctx.kc, namespace);
    await createApiKeys(ctx.kc, namespace, 10);
    await waitFor(() => (ready.readyAt.size >= 10 ? true : undefined), {
      description: '10 ApiKeys Ready',
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 50,
    });
    ready.stop();
    // Each reading once the operator has processed the keys and is idle: the current resident set, not the peak.
    await settled(operator, 0, 10);
    const without = await operator.rssMiB();
    const core = ctx.kc.makeApiClient(CoreV1Api);
    const blob = Buffer.alloc(1000 * 1024, 7)
      .toString('base64')
      .slice(0, 1000 * 1024);
    let next = 0;
    const worker = async () => {
      while (next < 500) {
        const name = `unrelated-${next++}`;
        await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { blob } } });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // A relist too: still none of them may be cached. It is over when every key has been looked at again.
    const reconciled = await reconciles(operator);
    operator.signal('SIGHUP');
    await settled(operator, reconciled, 10);
    const withSecrets = await operator.rssMiB();
    return { rssWithoutMiB: without, rssWith500UnrelatedMiB: withSecrets, growthMiB: withSecrets - without };
  } finally {
    await operator.stop();
  }
}

/** 7: create-to-Ready latency under a steady 20 creations per second. */
export async function latency(
  ctx: Context,
  namespace: string,
  perSecond = 20,
  seconds = 30,
): Promise<Result> {
  await createNamespace(ctx.kc, namespace);
  const operator = await startOperator(ctx, namespace);
  try {
    const ready = await watchReady(ctx.kc, namespace);
    const custom = ctx.kc.makeApiClient(CustomObjectsApi);
    const createdAt = new Map<string, number>();
    const total = perSecond * seconds;
    const start = performance.now();
    const creations: Promise<unknown>[] = [];
    for (let i = 0; i < total; i += 1) {
      const due = start + (i * 1000) / perSecond;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const name = `steady-${i}`;
      createdAt.set(name, performance.now());
      creations.push(
        custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          body: apiKeyManifest(namespace, name),
        }),
      );
    }
    await Promise.all(creations);
    await waitFor(() => (ready.readyAt.size >= total ? true : undefined), {
      description: 'steady keys Ready',
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 50,
    });
    ready.stop();
    const latencies = [...createdAt].map(([name, at]) => (ready.readyAt.get(name) ?? Number.NaN) - at);
    return {
      creationsPerSecond: perSecond,
      keys: total,
      createToReadyMs: {
        p50: Math.round(percentile(latencies, 50)),
        p99: Math.round(percentile(latencies, 99)),
      },
      eventLoopLagP99Ms: await eventLoopLagP99Ms(operator),
    };
  } finally {
    await operator.stop();
  }
}
