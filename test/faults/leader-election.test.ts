import { CoordinationV1Api, CoreV1Api, type V1Lease } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { readAuditedWrites, replicaWrites } from '../support/audit.ts';
import { createApiKey, readApiKey, waitForReady } from '../support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { waitFor } from '../support/wait.ts';
import { startFaultControlPlane, type FaultControlPlane } from './control-plane.ts';

// Short timings keep the tests quick; the rules are the same at the defaults (15 s / 10 s / 2 s).
const LEASE_MS = 4_000;
const RENEW_DEADLINE_MS = 3_000;
const RETRY_MS = 500;
const LEASE_NAMESPACE = 'keyrotor-system';

let cluster: FaultControlPlane;
const replicas: OperatorProcess[] = [];
let round = 0;

beforeAll(async () => {
  cluster = await startFaultControlPlane();
  await cluster.createNamespace(LEASE_NAMESPACE);
});

afterAll(async () => {
  await cluster.controlPlane.stop();
});

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((replica) => replica.kill()));
});

async function startReplica(instance: string, namespace: string, lease: string): Promise<OperatorProcess> {
  const replica = await startOperatorProcess(cluster.controlPlane.kubeconfig, [
    '--namespaces',
    namespace,
    '--instance',
    instance,
    '--leader-elect',
    '--leader-election-namespace',
    LEASE_NAMESPACE,
    '--leader-election-id',
    lease,
    '--lease-duration',
    `${LEASE_MS / 1000}s`,
    '--renew-deadline',
    `${RENEW_DEADLINE_MS / 1000}s`,
    '--retry-period',
    `${RETRY_MS}ms`,
  ]);
  replicas.push(replica);
  return replica;
}

async function readLease(name: string): Promise<V1Lease | undefined> {
  return cluster.kc
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ namespace: LEASE_NAMESPACE, name })
    .catch(() => undefined);
}

async function holderOf(name: string, not?: string): Promise<string> {
  return waitFor(
    async () => {
      const holder = (await readLease(name))?.spec?.holderIdentity;
      return holder && holder !== not ? holder : undefined;
    },
    {
      description: `a holder of Lease ${name}${not ? ` other than ${not}` : ''}`,
      timeoutMs: 30_000,
      intervalMs: 50,
    },
  );
}

/** Two replicas on a namespace of their own, the first already leading. */
async function twoReplicas(prefix: string) {
  round += 1;
  const namespace = `${prefix}-${round}`;
  const lease = `keyrotor-${namespace}`;
  await cluster.createNamespace(namespace);
  const a = await startReplica(`${namespace}-a`, namespace, lease);
  expect(await holderOf(lease)).toBe(`${namespace}-a`);
  const b = await startReplica(`${namespace}-b`, namespace, lease);
  return { namespace, lease, a, b, leaderName: `${namespace}-a`, standbyName: `${namespace}-b` };
}

describe('leader election (two replicas)', () => {
  it('only the leader writes; the standby keeps warm caches, is ready, and reports itself as standby', async () => {
    const { namespace, a, b, leaderName, standbyName } = await twoReplicas('standby');
    await Promise.all(['one', 'two', 'three'].map((name) => createApiKey(cluster.kc, namespace, name)));
    await Promise.all(['one', 'two', 'three'].map((name) => waitForReady(cluster.kc, namespace, name)));

    expect(await a.metric('keyrotor_leader')).toBe(1);
    expect(await b.metric('keyrotor_leader')).toBe(0);
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    // Warm: the standby's own ApiKey cache follows the leader's writes (keyrotor_apikeys is counted from it).
    await waitFor(
      async () =>
        (await b.metric('keyrotor_apikeys{ready="True",reason="KeyIssued"}')) === 3 ? true : undefined,
      { description: "the standby's cache to hold the three Ready keys" },
    );
    const writes = (await readAuditedWrites(cluster.auditLog)).filter(
      (write) => write.namespace === namespace,
    );
    expect(replicaWrites(writes, leaderName).length).toBeGreaterThanOrEqual(3 * 3);
    expect(replicaWrites(writes, standbyName)).toEqual([]);
  });

  it('a killed leader is replaced once its Lease expires, and the new leader finishes the work', async () => {
    const { namespace, lease, a, standbyName } = await twoReplicas('failover');
    const killedAt = Date.now();
    await a.kill();
    await createApiKey(cluster.kc, namespace, 'after-failover');
    expect(await holderOf(lease, `${namespace}-a`)).toBe(standbyName);
    const tookOverMs = Date.now() - killedAt;
    await waitForReady(cluster.kc, namespace, 'after-failover');
    const readyMs = Date.now() - killedAt;
    console.error(
      `[faults] SIGKILL failover: Lease taken after ${tookOverMs} ms, new key Ready after ${readyMs} ms`,
    );
    // Not before the Lease could expire: the standby must not take a Lease that is still held.
    expect(tookOverMs).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS);
    expect((await readLease(lease))?.spec?.leaseTransitions).toBe(1);
  });

  it('a leader stopped with SIGTERM releases the Lease, so the standby takes over without waiting for expiry', async () => {
    const { namespace, lease, a, standbyName } = await twoReplicas('release');
    expect(await a.stop()).toBe(0);
    expect((await readLease(lease))?.spec?.holderIdentity).not.toBe(`${namespace}-a`);
    expect(await holderOf(lease)).toBe(standbyName);
    // From the release (the old leader's log) to the acquisition (the new holder's acquireTime), both
    // written by the replicas themselves: the graceful shutdown before the release is not counted.
    const released = await waitFor(() => a.lines.find((line) => line.msg === 'released the lease'), {
      description: "the old leader's release in its log",
    });
    const acquiredAt = new Date((await readLease(lease))?.spec?.acquireTime ?? 0).getTime();
    const tookOverMs = acquiredAt - Date.parse(String(released.time));
    console.error(`[faults] SIGTERM handover: Lease taken ${tookOverMs} ms after its release`);
    expect(tookOverMs).toBeLessThan(LEASE_MS);
    await createApiKey(cluster.kc, namespace, 'after-handover');
    await waitForReady(cluster.kc, namespace, 'after-handover');
  });

  it('with the API server stalled past the renew deadline, the old leader stops writing before the new one starts', async () => {
    const { namespace, a, leaderName, standbyName } = await twoReplicas('stall');
    // Work in flight when the stall begins: a burst of new keys for the leader to issue.
    const names = Array.from({ length: 60 }, (_, index) => `key-${index}`);
    await Promise.all(names.map((name) => createApiKey(cluster.kc, namespace, name)));
    await waitFor(
      async () =>
        replicaWrites(await readAuditedWrites(cluster.auditLog), leaderName).some(
          (write) => write.namespace === namespace,
        )
          ? true
          : undefined,
      { description: 'the leader to start writing', intervalMs: 20 },
    );
    const apiserver = cluster.pidOf('kube-apiserver');
    process.kill(apiserver, 'SIGSTOP');
    const stalledAt = Date.now();
    try {
      // Past the renew deadline by the operator's clock; nothing to watch while the API server is stopped.
      await waitFor(() => (Date.now() - stalledAt >= RENEW_DEADLINE_MS + 2_000 ? true : undefined), {
        description: 'the stall to outlast the renew deadline',
        intervalMs: 100,
      });
    } finally {
      process.kill(apiserver, 'SIGCONT');
    }
    // The old leader could not renew: it exits, as controller-runtime's managers do.
    const exitCode = await waitFor(() => a.exitCode(), {
      description: 'the old leader to exit',
      timeoutMs: 30_000,
    });
    expect(exitCode).toBe(1);
    await Promise.all(names.map((name) => waitForReady(cluster.kc, namespace, name)));

    const writes = (await readAuditedWrites(cluster.auditLog)).filter(
      (write) => write.namespace === namespace,
    );
    const old = replicaWrites(writes, leaderName);
    const next = replicaWrites(writes, standbyName);
    expect(next.length).toBeGreaterThan(0);
    const lastOld = Math.max(...old.map((write) => write.finishedAt));
    const firstNew = Math.min(...next.map((write) => write.receivedAt));
    console.error(
      `[faults] stall: old leader's last write finished ${firstNew - lastOld} ms before the new leader's first`,
    );
    expect(lastOld).toBeLessThanOrEqual(firstNew);
    // Each key issued once, by one replica or the other: no rotation, one Secret each.
    for (const name of names)
      expect((await readApiKey(cluster.kc, namespace, name)).status?.rotationCount).toBe(0);
    const secrets = await cluster.kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace });
    expect(secrets.items).toHaveLength(names.length);
  });
});
