// The floor: the same writes per key as the operator (Secret apply, status apply, an Event) from a bare
// client with no controller logic, through the operator's own client stack (bench/measure.ts Limit: the
// same rate limit and burst, the same connection pool) and as many at a time as its reconciles.
//
// It is measured over the same interval as converge, with the same creation schedule: the harness
// creates the N ApiKeys, 32 at a time, and the floor starts on each key as soon as its create returns
// (the operator learns of it by its watch instead). Both intervals run from the first creation the API
// server received to the last write of the key material done (bench/measure.ts convergeSeconds).
import {
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  PatchStrategy,
  V1MicroTime,
  setHeaderOptions,
} from '@kubernetes/client-node';

import { FIELD_MANAGER, GROUP, PLURAL, VERSION } from '../operator/src/api/names.ts';
import { generateKey, keyId } from '../operator/src/keys/format.ts';
import { makeClient } from '../operator/src/kube/client.ts';
import { TokenBucket } from '../operator/src/kube/rate-limiter.ts';
import { FLOOR_AGENT } from './audit.ts';
import { createApiKeys, createNamespace } from './harness.ts';
import { convergeSeconds, counted, type Context, type Limit, type Result } from './measure.ts';

/** Hands out names as they are created; `next` resolves to undefined once all are handed out. */
function createdQueue() {
  const names: string[] = [];
  const waiting: (() => void)[] = [];
  let open = true;
  const wake = () => {
    for (const resolve of waiting.splice(0)) resolve();
  };
  return {
    push: (name: string) => {
      names.push(name);
      waiting.shift()?.();
    },
    close: () => {
      open = false;
      wake();
    },
    next: async (): Promise<string | undefined> => {
      for (;;) {
        const name = names.shift();
        if (name !== undefined || !open) return name;
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
    },
  };
}

export async function floor(ctx: Context, namespace: string, limit: Limit, concurrency = 4): Promise<Result> {
  await createNamespace(ctx.kc, namespace);
  // A client of its own (connection pool and limiter), as the operator process has.
  const kc = new KubeConfig();
  kc.loadFromFile(ctx.kubeconfig);
  const options = { limiter: new TokenBucket(limit.qps, limit.burst), userAgent: FLOOR_AGENT };
  const core = makeClient(kc, CoreV1Api, options);
  const custom = makeClient(kc, CustomObjectsApi, options);
  const events = makeClient(kc, EventsV1Api, options);
  const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const created = createdQueue();
  const sent: Promise<unknown>[] = [];
  const write = async (name: string) => {
    const key = generateKey({ prefix: 'kr', environment: 'production', bits: 256 });
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
    // As the operator does: the Event is sent beside the next key's work, not waited for.
    const event = events.createNamespacedEvent({
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
    sent.push(event);
  };
  const worker = async () => {
    for (let name = await created.next(); name !== undefined; name = await created.next()) await write(name);
  };
  // Connected before the interval starts, as the operator is by its first lists.
  await core.readNamespace({ name: namespace });
  const mark = await ctx.audit.mark();
  const creating = createApiKeys(ctx.kc, namespace, ctx.keys, 32, {}, created.push).finally(created.close);
  await Promise.all([creating, ...Array.from({ length: concurrency }, worker)]);
  await Promise.all(sent);
  const requests = await ctx.audit.since(mark);
  const { requests: byClient } = counted(requests);
  return {
    wallSeconds: convergeSeconds(requests, 'floor'),
    configuredQps: limit.qps,
    requests: byClient,
    writes: requests.filter((request) => request.client === 'floor' && request.write).length,
  };
}
