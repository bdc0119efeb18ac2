// Scenarios 5 and 5b, the storms: N keys due at the same moment (one cron tick), served at the
// operator's default rate limit; with an issuer, the verifier's writes and how soon it lists every key.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';

import { GROUP, PLURAL, VERSION } from '../operator/src/api/names.ts';
import { VERIFIER_FILE, parseVerifierDocument } from '../operator/src/verify/document.ts';
import { createIssuer, listApiKeys, readIssuer } from '../test/support/operator.ts';
import type { OperatorProcess } from '../test/support/operator-process.ts';
import { waitFor } from '../test/support/wait.ts';
import { peakPerSecond } from './audit.ts';
import { createApiKeys, createNamespace, followApiKeys, watchReady } from './harness.ts';
import {
  READY_TIMEOUT_MS,
  limitFlags,
  probe,
  round,
  since,
  startOperator,
  verifierWrites,
  type Context,
  type Limit,
  type Result,
} from './measure.ts';

const STORM_ISSUER = 'storm-api';

/**
 * One issuer's verifier holds about 3,500 entries (a Secret's 1 MiB), and a key in its grace period (10m
 * by default) is two: a storm of this many keys, all rotating at once, fills at most 3,000. (Before the
 * default grace period the storm used 2,000 keys: 4,000 entries now, VerifierTooLarge; issue 24.)
 */
const VERIFIER_STORM_MAX_KEYS = 1_500;

/**
 * 5: N keys due at the same moment (one cron tick): time until all rotated; peak request rate. With `issuer`, every key belongs to one ApiKeyIssuer (at most
 * VERIFIER_STORM_MAX_KEYS keys), and the result adds how many verifier writes the storm made and when
 * the verifier listed every new key.
 */
export async function storm(
  ctx: Context,
  namespace: string,
  limit: Limit,
  { issuer = false } = {},
): Promise<Result> {
  await createNamespace(ctx.kc, namespace);
  // The keys are issued moments before the tick: the churn limit (a rotation at most every five
  // minutes per key) would hold their rotations back, and this measures how fast a storm is served.
  const operator = await startOperator(ctx, namespace, [
    '--min-rotation-interval',
    '0s',
    ...limitFlags(limit),
  ]);
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
    // A key that rotated before the tick is a finding, not a harness failure: say which and why, and
    // still wait for its scheduled rotation (its next run after the early one is the same tick).
    // Early by the key's own issuedAt, not by when the harness saw it: at 10,000 keys the harness's
    // event loop can be late for its own check, and a rotation at the tick was then taken for an early
    // one and waited for again (for 30 minutes).
    const early = [...rotated.keys()].filter((name) => {
      const issuedAt = (details.get(name) as { issuedAt?: string } | undefined)?.issuedAt;
      return issuedAt === undefined || Date.parse(issuedAt) < tick;
    });
    for (const name of early)
      ctx.log(`storm: ${name} rotated before the tick: ${JSON.stringify(details.get(name))}`);
    for (const name of early) rotated.delete(name);
    baseline = new Map(early.map((name) => [name, counts.get(name) ?? 0]));
    await waitFor(() => (rotated.size >= keys ? true : undefined), {
      description: 'all keys rotated',
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 50,
    });
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
      peakRequestsPerSecond: peakPerSecond(await ctx.audit.since(before.mark), 'operator'),
      configuredQps: limit.qps,
    };
  } finally {
    await operator.stop();
  }
}

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
      // A verifier that cannot hold every key never catches up: say so at once rather than time out.
      const issuer = await readIssuer(ctx.kc, namespace, STORM_ISSUER);
      const ready = issuer.status?.conditions?.find((condition) => condition.type === 'Ready');
      if (ready?.reason === 'VerifierTooLarge') throw new Error(`storm: ${ready.message}`);
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

/**
 * Times (epoch ms) at which each ApiKey of the namespace first showed a rotationCount above its
 * baseline (0 unless the caller moves it), its latest count, and what its status said of the rotation.
 */
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
