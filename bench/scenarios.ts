// The benchmark scenarios. Each measures from outside the operator: the API server's own request
// counters, the operator process's CPU and memory from /proc, its event-loop lag from its /metrics.
import {
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  V1MicroTime,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';

import { FIELD_MANAGER, GROUP, PLURAL, VERSION } from '../operator/src/api/names.ts';
import { generateKey, keyId } from '../operator/src/keys/format.ts';
import { TokenBucket } from '../operator/src/kube/rate-limiter.ts';
import { VERIFIER_FILE, parseVerifierDocument } from '../operator/src/verify/document.ts';
import { apiKeyManifest, createIssuer, listApiKeys } from '../test/support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../test/support/operator-process.ts';
import { waitFor } from '../test/support/wait.ts';
import {
  apiserverRequests,
  createApiKeys,
  createNamespace,
  difference,
  followApiKeys,
  percentile,
  watchReady,
} from './harness.ts';

export interface Context {
  readonly kc: KubeConfig;
  readonly kubeconfig: string;
  readonly keys: number;
  readonly log: (message: string) => void;
}

export type Result = Record<string, unknown>;

const READY_TIMEOUT_MS = 30 * 60_000;
const STORM_ISSUER = 'storm-api';
const round = (value: number, digits = 2) => Number(value.toFixed(digits));
const writesOf = (requests: Record<string, number>) =>
  Object.entries(requests)
    .filter(([verbAndResource]) => !/^(GET|LIST|WATCH) /.test(verbAndResource))
    .reduce((total, [, count]) => total + count, 0);

/** Values of the operator's own metrics (reconciles, queue depth, event-loop lag). */
export async function operatorMetric(operator: OperatorProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${operator.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => pattern.test(line))
    .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
const verifierWrites = (operator: OperatorProcess) =>
  operatorMetric(operator, /^keyrotor_verifier_writes_total /);
const reconciles = (operator: OperatorProcess) => operatorMetric(operator, /^keyrotor_reconcile_total\{/);
const queueDepth = (operator: OperatorProcess) => operatorMetric(operator, /^keyrotor_workqueue_depth /);
const eventLoopLagP99Ms = async (operator: OperatorProcess) =>
  round((await operatorMetric(operator, /^keyrotor_nodejs_eventloop_lag_p99_seconds /)) * 1000);

/** Waits until the operator has reconciled `count` more times than `since` and its queue is empty. */
async function settled(operator: OperatorProcess, since: number, count: number): Promise<void> {
  await waitFor(
    async () =>
      (await reconciles(operator)) >= since + count && (await queueDepth(operator)) === 0 ? true : undefined,
    {
      description: `${count} reconciles`,
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 200,
    },
  );
}

interface Probe {
  readonly requests: Record<string, number>;
  readonly cpu: number;
  readonly at: number;
}
async function probe(ctx: Context, operator: OperatorProcess): Promise<Probe> {
  return {
    requests: await apiserverRequests(ctx.kc),
    cpu: await operator.cpuSeconds(),
    at: performance.now(),
  };
}
async function since(ctx: Context, operator: OperatorProcess, before: Probe) {
  const requests = difference(await apiserverRequests(ctx.kc), before.requests);
  return {
    wallSeconds: round((performance.now() - before.at) / 1000, 3),
    apiserverRequests: requests,
    writes: writesOf(requests),
    operatorCpuSeconds: round((await operator.cpuSeconds()) - before.cpu),
    operatorPeakRssMiB: await operator.peakRssMiB(),
    eventLoopLagP99Ms: await eventLoopLagP99Ms(operator),
  };
}

export async function startOperator(ctx: Context, namespace: string, extra: string[] = []) {
  return startOperatorProcess(ctx.kubeconfig, ['--namespaces', namespace, '--log-level', 'warn', ...extra]);
}

/** 1: N ApiKeys created in a burst, until all are Ready. Leaves the operator running for 3 and 4. */
export async function converge(
  ctx: Context,
  namespace: string,
): Promise<{ result: Result; operator: OperatorProcess }> {
  await createNamespace(ctx.kc, namespace);
  const operator = await startOperator(ctx, namespace);
  const ready = await watchReady(ctx.kc, namespace);
  const before = await probe(ctx, operator);
  const createdAt = await createApiKeys(ctx.kc, namespace, ctx.keys);
  await waitFor(() => (ready.readyAt.size >= ctx.keys ? true : undefined), {
    description: `${ctx.keys} ApiKeys Ready`,
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: 50,
  });
  ready.stop();
  const latencies = [...createdAt].map(([name, at]) => (ready.readyAt.get(name) ?? Number.NaN) - at);
  const measured = await since(ctx, operator, before);
  return {
    operator,
    result: {
      ...measured,
      keysPerSecond: round(ctx.keys / measured.wallSeconds, 1),
      createToReadyMs: {
        p50: Math.round(percentile(latencies, 50)),
        p99: Math.round(percentile(latencies, 99)),
      },
    },
  };
}

/**
 * 2: the floor. The same writes per key as the operator (Secret apply, status apply, an Event), from a
 * bare client with no controller logic, paced by the same rate limit and concurrency.
 */
export async function floor(
  ctx: Context,
  namespace: string,
  qps: number,
  burst: number,
  concurrency: number,
): Promise<Result> {
  await createNamespace(ctx.kc, namespace);
  const core = ctx.kc.makeApiClient(CoreV1Api);
  const custom = ctx.kc.makeApiClient(CustomObjectsApi);
  const events = ctx.kc.makeApiClient(EventsV1Api);
  const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const limiter = new TokenBucket(qps, burst);
  const before = { requests: await apiserverRequests(ctx.kc), at: performance.now() };
  const created = await createApiKeys(ctx.kc, namespace, ctx.keys);
  const names = [...created.keys()];
  const worker = async () => {
    for (let name = names.shift(); name !== undefined; name = names.shift()) {
      const key = generateKey({ prefix: 'kr', environment: 'production', bits: 256 });
      await limiter.take();
      await core.patchNamespacedSecret(
        {
          namespace,
          name,
          fieldManager: FIELD_MANAGER,
          force: true,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name, namespace },
            stringData: { 'api-key': key, 'key-id': keyId(key) },
          },
        },
        apply,
      );
      await limiter.take();
      await custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name,
          fieldManager: FIELD_MANAGER,
          force: true,
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'ApiKey',
            metadata: { name, namespace },
            status: { keyId: keyId(key) },
          },
        },
        apply,
      );
      await limiter.take();
      await events.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${name}.${keyId(key)}`, namespace },
          eventTime: new V1MicroTime(),
          reportingController: 'bench/floor',
          reportingInstance: 'bench',
          action: 'Issue',
          reason: 'Issued',
          type: 'Normal',
          regarding: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ApiKey', name, namespace },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const requests = difference(await apiserverRequests(ctx.kc), before.requests);
  return {
    wallSeconds: round((performance.now() - before.at) / 1000, 3),
    apiserverRequests: requests,
    writes: writesOf(requests),
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
): Promise<{ result: Result; operator: OperatorProcess }> {
  await operator.stop();
  const started = performance.now();
  const requestsBefore = await apiserverRequests(ctx.kc);
  const next = await startOperator(ctx, namespace);
  const readySeconds = round((performance.now() - started) / 1000, 3);
  await settled(next, 0, ctx.keys);
  const requests = difference(await apiserverRequests(ctx.kc), requestsBefore);
  return {
    operator: next,
    result: {
      readySeconds,
      allReconciledSeconds: round((performance.now() - started) / 1000, 3),
      apiserverRequests: requests,
      writes: writesOf(requests),
      operatorCpuSeconds: await next.cpuSeconds(),
      operatorPeakRssMiB: await next.peakRssMiB(),
    },
  };
}

/** One issuer holds at most about 3,000 keys (a Secret's 1 MiB): the verifier storm uses up to this many. */
const VERIFIER_STORM_MAX_KEYS = 2_000;

/**
 * 5: N keys due at the same moment (one cron tick): time until all rotated; peak request rate. With `issuer`, every key belongs to one ApiKeyIssuer (at most
 * VERIFIER_STORM_MAX_KEYS keys), and the result adds how many verifier writes the storm made and when
 * the verifier listed every new key.
 */
export async function storm(
  ctx: Context,
  namespace: string,
  qps: number,
  { issuer = false } = {},
): Promise<Result> {
  await createNamespace(ctx.kc, namespace);
  // The keys are issued moments before the tick: the churn limit (a rotation at most every five
  // minutes per key) would hold their rotations back, and this measures how fast a storm is served.
  const operator = await startOperator(ctx, namespace, ['--min-rotation-interval', '0s']);
  const keys = issuer ? Math.min(ctx.keys, VERIFIER_STORM_MAX_KEYS) : ctx.keys;
  try {
    if (issuer) await createIssuer(ctx.kc, namespace, STORM_ISSUER, { scopes: ['prices:*'] });
    const ready = await watchReady(ctx.kc, namespace);
    const created = await createApiKeys(ctx.kc, namespace, keys, 32, {
      expiresAfter: '2d',
      ...(issuer ? { issuerRef: { namespace, name: STORM_ISSUER } } : {}),
    });
    await waitFor(() => (ready.readyAt.size >= keys ? true : undefined), {
      description: 'storm keys Ready',
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 100,
    });
    ready.stop();
    // Give every key the same daily schedule, at a minute far enough ahead for all of them to take it.
    const tick = Math.ceil((Date.now() + 30_000 + keys * 20) / 60_000) * 60_000;
    const at = new Date(tick);
    const schedule = `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
    const custom = ctx.kc.makeApiClient(CustomObjectsApi);
    const names = [...created.keys()];
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let name = names.shift(); name !== undefined; name = names.shift()) {
          await custom.patchNamespacedCustomObject(
            {
              group: GROUP,
              version: VERSION,
              namespace,
              plural: PLURAL,
              name,
              body: { spec: { rotation: { schedule } } },
            },
            merge,
          );
        }
      }),
    );
    ctx.log(`storm: ${keys} keys due at ${at.toISOString()} (schedule "${schedule}")`);
    let baseline = new Map<string, number>();
    const baselineOf = (name: string) => baseline.get(name) ?? 0;
    const {
      rotated,
      counts,
      details,
      stop: stopWatching,
    } = await watchRotated(ctx.kc, namespace, baselineOf);
    await waitFor(() => (Date.now() >= tick - 1000 ? true : undefined), {
      description: 'the tick',
      timeoutMs: 30 * 60_000,
      intervalMs: 100,
    });
    // Measured from just before the tick: the first rotations start the moment it passes.
    const before = await probe(ctx, operator);
    const verifierWritesBefore = await verifierWrites(operator);
    const rates: number[] = [];
    let last = before.requests;
    const sampler = setInterval(() => {
      void apiserverRequests(ctx.kc).then((current) => {
        rates.push(Object.values(difference(current, last)).reduce((a, b) => a + b, 0));
        last = current;
      });
    }, 1000);
    // A key that rotated before the tick is a finding, not a harness failure: say which and why, and
    // still wait for its scheduled rotation (its next run after the early one is the same tick).
    const early = [...rotated.keys()];
    for (const name of early)
      ctx.log(`storm: ${name} rotated before the tick: ${JSON.stringify(details.get(name))}`);
    for (const name of early) rotated.delete(name);
    baseline = new Map(early.map((name) => [name, counts.get(name) ?? 0]));
    await waitFor(() => (rotated.size >= keys ? true : undefined), {
      description: 'all keys rotated',
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 50,
    });
    clearInterval(sampler);
    stopWatching();
    const verifier = issuer
      ? await verifierCaughtUp(ctx, namespace, operator, tick, verifierWritesBefore)
      : {};
    const measured = await since(ctx, operator, before);
    return {
      ...measured,
      keys,
      ...verifier,
      allRotatedSeconds: round((Math.max(...rotated.values()) - tick) / 1000, 3),
      rotatedBeforeTick: early.length,
      peakRequestsPerSecond: rates.length > 0 ? Math.max(...rates) : undefined,
      configuredQps: qps,
    };
  } finally {
    await operator.stop();
  }
}

/**
 * Times (epoch ms) at which each ApiKey of the namespace first showed a rotationCount above its
 * baseline (0 unless the caller moves it), its latest count, and what its status said of the rotation.
 */
/** How many verifier writes a storm made, and when the verifier listed every key's current key. */
async function verifierCaughtUp(
  ctx: Context,
  namespace: string,
  operator: OperatorProcess,
  tick: number,
  writesBefore: number,
): Promise<Result> {
  const core = ctx.kc.makeApiClient(CoreV1Api);
  await waitFor(
    async () => {
      const current = new Set((await listApiKeys(ctx.kc, namespace)).map((apiKey) => apiKey.status?.keyId));
      const secret = await core.readNamespacedSecret({ namespace, name: `${STORM_ISSUER}-verifier` });
      const document = parseVerifierDocument(
        Buffer.from(secret.data?.[VERIFIER_FILE] ?? '', 'base64').toString('utf8'),
      );
      const listed = new Set(document.keys.map((entry) => entry.keyId));
      return [...current].every((id) => id !== undefined && listed.has(id)) ? true : undefined;
    },
    { description: 'the verifier to list every new key', timeoutMs: READY_TIMEOUT_MS, intervalMs: 200 },
  );
  return {
    verifierListsAllSeconds: round((Date.now() - tick) / 1000, 3),
    verifierWrites: (await verifierWrites(operator)) - writesBefore,
  };
}

async function watchRotated(kc: KubeConfig, namespace: string, baselineOf: (name: string) => number) {
  const rotated = new Map<string, number>();
  const counts = new Map<string, number>();
  const details = new Map<string, unknown>();
  const follower = followApiKeys(kc, namespace, (apiKey) => {
    const name = apiKey.metadata.name;
    const count = apiKey.status?.rotationCount ?? 0;
    counts.set(name, count);
    if (count > baselineOf(name) && !rotated.has(name)) {
      rotated.set(name, Date.now());
      details.set(name, {
        rotationCount: count,
        issuedAt: apiKey.status?.issuedAt,
        history: apiKey.status?.history,
      });
    }
  });
  await follower.started;
  return { rotated, counts, details, stop: follower.stop };
}

/** 6: the operator's memory with and without 500 unrelated ~1 MiB Secrets in its namespace (target: no growth). */
export async function unrelated(ctx: Context, namespace: string): Promise<Result> {
  await createNamespace(ctx.kc, namespace);
  const operator = await startOperator(ctx, namespace);
  try {
    await createApiKeys(ctx.kc, namespace, 10);
    const rss = async () => {
      // Settle, then read the current resident set (not the peak).
      await new Promise((resolve) => setTimeout(resolve, 2000));
      return operator.rssMiB();
    };
    const without = await rss();
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
    operator.signal('SIGHUP'); // a relist too: still none of them may be cached
    const withSecrets = await rss();
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
