// Issue 16, item 8: leader fencing read the wall clock, so a clock step (NTP, a VM resuming, `date -s`)
// could let the old and the new leader write together. Two LeaderElectors run here against the real API
// server, each as a ServiceAccount of its own, each with clocks the test can step or stop. The leader then
// loses the right to update its Lease only (its renewals fail, its other requests do not, as when its
// Lease requests stall), and keeps writing a ConfigMap through a client fenced by its write budget, as the
// controller's writes are. Every time below is performance.now() of this process, so times compare.
import {
  CoordinationV1Api,
  CoreV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  Watch,
  setHeaderOptions,
  type KubeConfig,
  type V1Lease,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { LeaseTimings } from '../../operator/src/kube/leadership.ts';
import { NOT_LEADER, makeClient } from '../../operator/src/kube/client.ts';
import { KubeError } from '../../operator/src/kube/errors.ts';
import { LeaderElector } from '../../operator/src/kube/leader-election.ts';
import { adminKubeConfig, createTestNamespace, tokenKubeConfig } from '../support/kube.ts';
import { can } from '../support/tenant.ts';
import { waitFor } from '../support/wait.ts';

// Short timings keep the test quick; the rules are the same at the defaults (15 s / 10 s / 2 s).
const TIMINGS: LeaseTimings = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 };
const HOUR = 3_600_000;
/** What the measured times may be off by: timers, a watch event's delivery, a request on two busy cores. */
const SLACK_MS = 250;
const LEASE_GROUP = 'coordination.k8s.io';

interface Replica {
  readonly name: string;
  readonly kc: KubeConfig;
}

interface Attempt {
  readonly startedAt: number;
  readonly endedAt: number;
  /** undefined: the write went through. */
  readonly refused?: string;
}

describe('leader fencing on the monotonic clock, against the real API server', () => {
  const admin = adminKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(admin, 'fencing'));
    const roles = {
      'lease-reader': [{ apiGroups: [LEASE_GROUP], resources: ['leases'], verbs: ['get'] }],
      'lease-writer': [{ apiGroups: [LEASE_GROUP], resources: ['leases'], verbs: ['create', 'update'] }],
      writer: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'patch'] }],
    };
    for (const [name, rules] of Object.entries(roles))
      await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } });
  });
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
  });
  afterAll(async () => {
    await removeNamespace();
  });

  const bindingOf = (replica: string, role: string) => `${replica}-${role}`;

  /** A ServiceAccount bound to hold Leases and write ConfigMaps, and a kubeconfig with its token. */
  async function createReplica(name: string): Promise<Replica> {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    for (const role of ['lease-reader', 'lease-writer', 'writer'])
      await rbac.createNamespacedRoleBinding({
        namespace,
        body: {
          metadata: { name: bindingOf(name, role) },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
          subjects: [{ kind: 'ServiceAccount', name, namespace }],
        },
      });
    const request = await core.createNamespacedServiceAccountToken({
      namespace,
      name,
      body: { spec: { expirationSeconds: 3600, audiences: [] } },
    });
    const token = request.status?.token;
    if (token === undefined) throw new Error(`TokenRequest for ${name} returned no token`);
    const replica = { name, kc: tokenKubeConfig(admin, token) };
    await waitFor(
      async () =>
        (await can({ kc: replica.kc, namespace }, 'update', LEASE_GROUP, 'leases')) &&
        (await can({ kc: replica.kc, namespace }, 'patch', '', 'configmaps'))
          ? true
          : undefined,
      { description: `${name} to be authorized` },
    );
    return replica;
  }

  /** Takes the replica's right to update Leases away and returns once the API server refuses it. */
  async function cutOffLease(replica: Replica): Promise<number> {
    await rbac.deleteNamespacedRoleBinding({ namespace, name: bindingOf(replica.name, 'lease-writer') });
    await waitFor(
      async () =>
        (await can({ kc: replica.kc, namespace }, 'update', LEASE_GROUP, 'leases')) ? undefined : true,
      { description: `${replica.name} to lose the right to update Leases`, intervalMs: 20 },
    );
    return performance.now();
  }

  /**
   * Runs a LeaderElector for `replica` on `lease`. The test steps its wall clock by `clock.wallStepMs`
   * and stops its monotonic clock at `clock.frozenAt`, as a suspend of the machine does.
   */
  function elect(replica: Replica, lease: string) {
    const abort = new AbortController();
    const clock: { wallStepMs: number; frozenAt?: number } = { wallStepMs: 0 };
    const seen = { reads: [] as number[], lastWriteSentAt: 0 };
    const state: { acquireSentAt?: number; stoppedAt?: number; stopReason?: string } = {};
    const elector = new LeaderElector({
      kc: replica.kc,
      logger: pino({ level: 'silent' }),
      namespace,
      name: lease,
      identity: replica.name,
      timings: TIMINGS,
      onStartedLeading: () => {
        state.acquireSentAt = seen.lastWriteSentAt;
      },
      onStoppedLeading: (reason) => {
        state.stoppedAt = performance.now();
        state.stopReason = reason;
      },
      onRequest: (method) => {
        if (method === 'GET') seen.reads.push(performance.now());
        else seen.lastWriteSentAt = performance.now();
      },
      // The wall clock as NTP or `date -s` steps it.
      now: () => Date.now() + clock.wallStepMs,
      monotonicNow: () => clock.frozenAt ?? performance.now(),
    });
    const running = elector.run(abort.signal);
    stops.push(async () => {
      abort.abort();
      await running;
    });
    return { elector, clock, seen, state };
  }

  /** The leader's workload: merge-patches a ConfigMap through a client fenced by its write budget. */
  async function writeAsLeader(replica: Replica, elector: LeaderElector, configMap: string) {
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: configMap } } });
    const api = makeClient(replica.kc, CoreV1Api, { writeBudgetMs: () => elector.writeBudgetMs() });
    const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const attempts: Attempt[] = [];
    const control = { stopped: false };
    const loop = (async () => {
      for (let n = 0; !control.stopped; n += 1) {
        const startedAt = performance.now();
        try {
          const body = { data: { write: String(n) } };
          await api.patchNamespacedConfigMap({ namespace, name: configMap, body }, mergePatch);
          attempts.push({ startedAt, endedAt: performance.now() });
        } catch (error) {
          const refused = error instanceof KubeError ? error.reason : String(error);
          attempts.push({ startedAt, endedAt: performance.now(), refused });
        }
        // Paces the workload (about 20 writes a second) so the shared API server is not flooded.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    stops.push(async () => {
      control.stopped = true;
      await loop;
    });
    return attempts;
  }

  /** When this process saw each change of the Lease, and who held it then. */
  async function watchLease(lease: string) {
    const changes: { at: number; holder: string | undefined }[] = [];
    const request = await new Watch(admin).watch(
      `/apis/${LEASE_GROUP}/v1/namespaces/${namespace}/leases`,
      { fieldSelector: `metadata.name=${lease}` },
      (_type: string, object: V1Lease) => {
        changes.push({ at: performance.now(), holder: object.spec?.holderIdentity });
      },
      () => undefined,
    );
    stops.push(() => {
      request.abort();
      return Promise.resolve();
    });
    return changes;
  }

  /** Two replicas on `lease`, the first leading and writing, the second standing by. */
  async function leaderAndStandby(round: string) {
    const lease = `fencing-${round}`;
    const changes = await watchLease(lease);
    const [leaderReplica, standbyReplica] = await Promise.all([
      createReplica(`${round}-leader`),
      createReplica(`${round}-standby`),
    ]);
    const leader = elect(leaderReplica, lease);
    await waitFor(() => (leader.elector.writeBudgetMs() > 0 ? true : undefined), {
      description: 'the first replica to lead',
    });
    const standby = elect(standbyReplica, lease);
    const attempts = await writeAsLeader(leaderReplica, leader.elector, `written-${round}`);
    await waitFor(() => (attempts.some((attempt) => attempt.refused === undefined) ? true : undefined), {
      description: 'the leader to write',
    });
    return { lease, changes, leaderReplica, leader, standby, attempts };
  }

  /** Waits for the standby to take over, then for three more tries of the old leader to write. */
  async function takeOver(standby: ReturnType<typeof elect>, attempts: Attempt[]) {
    const acquireSentAt = await waitFor(() => standby.state.acquireSentAt, {
      description: 'the standby to take the Lease',
    });
    await waitFor(
      () => (attempts.filter((attempt) => attempt.startedAt > acquireSentAt).length >= 3 ? true : undefined),
      { description: 'the old leader to try to write after the takeover' },
    );
    return acquireSentAt;
  }

  it('a leader whose wall clock steps back an hour still runs out of write budget a renew deadline after its last renewal, and stops writing before the standby takes the Lease', async () => {
    const { changes, leaderReplica, leader, standby, attempts } = await leaderAndStandby('back');
    await cutOffLease(leaderReplica);
    leader.clock.wallStepMs = -HOUR;
    const acquireSentAt = await takeOver(standby, attempts);

    const lastRenewalSeenAt = Math.max(
      ...changes.filter((change) => change.holder === leaderReplica.name).map((change) => change.at),
    );
    const written = attempts.filter((attempt) => attempt.refused === undefined);
    const lastWriteEndedAt = Math.max(...written.map((attempt) => attempt.endedAt));
    const fencedAt = attempts.find((attempt) => attempt.refused === NOT_LEADER)?.startedAt ?? Infinity;
    console.error(
      `[security] leader wall clock -1h: last write ended ${Math.round(lastWriteEndedAt - lastRenewalSeenAt)} ms, ` +
        `first NotLeader ${Math.round(fencedAt - lastRenewalSeenAt)} ms, step-down ` +
        `${Math.round((leader.state.stoppedAt ?? Infinity) - lastRenewalSeenAt)} ms after the last renewal; ` +
        `the standby sent its acquire ${Math.round(acquireSentAt - lastWriteEndedAt)} ms after the last write ended`,
    );
    const late = written.filter((attempt) => attempt.endedAt >= acquireSentAt);
    expect(late, 'writes of the old leader that ended after the standby sent its acquire').toEqual([]);
    // On time: a renew deadline after the renewal the watch last saw, not an hour later.
    expect(lastWriteEndedAt - lastRenewalSeenAt).toBeLessThanOrEqual(TIMINGS.renewDeadlineMs + SLACK_MS);
    expect(fencedAt - lastRenewalSeenAt).toBeLessThanOrEqual(TIMINGS.renewDeadlineMs + SLACK_MS);
    // Once fenced, every further write is refused before it is sent.
    const later = attempts.filter((attempt) => attempt.startedAt > fencedAt);
    expect(later.filter((attempt) => attempt.refused !== NOT_LEADER)).toEqual([]);
    expect(leader.state.stopReason).toContain('renew deadline');
  });

  it('a standby whose wall clock steps forward an hour still waits a whole lease duration before taking the Lease, by when the old leader has stopped writing', async () => {
    const { lease, changes, leaderReplica, leader, standby, attempts } = await leaderAndStandby('forward');
    const cutOffAt = await cutOffLease(leaderReplica);
    // Two reads sent after the last renewal: the first of them has seen the Lease as it now stays.
    await waitFor(
      () => {
        const since = Math.max(cutOffAt, ...changes.map((change) => change.at));
        return standby.seen.reads.filter((sentAt) => sentAt > since).length >= 2 ? true : undefined;
      },
      { description: 'the standby to read the last renewal' },
    );
    standby.clock.wallStepMs = HOUR;
    const acquireSentAt = await takeOver(standby, attempts);

    const lastRenewalSeenAt = Math.max(
      ...changes.filter((change) => change.holder === leaderReplica.name).map((change) => change.at),
    );
    const written = attempts.filter((attempt) => attempt.refused === undefined);
    const lastWriteEndedAt = Math.max(...written.map((attempt) => attempt.endedAt));
    console.error(
      `[security] standby wall clock +1h: Lease taken ${Math.round(acquireSentAt - lastRenewalSeenAt)} ms ` +
        `after the last renewal, ${Math.round(acquireSentAt - lastWriteEndedAt)} ms after the old leader's last write`,
    );
    expect(
      acquireSentAt - lastRenewalSeenAt,
      'ms from the last renewal to the acquire',
    ).toBeGreaterThanOrEqual(TIMINGS.leaseDurationMs - SLACK_MS);
    const late = written.filter((attempt) => attempt.endedAt >= acquireSentAt);
    expect(late, 'writes of the old leader that ended after the standby sent its acquire').toEqual([]);
    const fencedAt = attempts.find((attempt) => attempt.refused === NOT_LEADER)?.startedAt ?? Infinity;
    expect(fencedAt).toBeLessThan(acquireSentAt);
    expect(leader.state.stopReason).toContain('renew deadline');
    const taken = await admin
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace, name: lease });
    expect(taken.spec?.holderIdentity).toBe('forward-standby');
    expect(taken.spec?.leaseTransitions).toBe(1);
  });

  // Not a step but a stop: CLOCK_MONOTONIC stands still while the machine is suspended, so the budget
  // does not run out; the Lease naming another holder then ends the leadership.
  it('a leader whose monotonic clock stands still steps down at its first read of the Lease after the standby took it', async () => {
    const { leaderReplica, leader, standby, attempts } = await leaderAndStandby('frozen');
    await cutOffLease(leaderReplica);
    leader.clock.frozenAt = performance.now();
    const acquireSentAt = await takeOver(standby, attempts);
    const stoppedAt = await waitFor(() => leader.state.stoppedAt, { description: 'the old leader to stop' });
    console.error(
      `[security] leader monotonic clock stopped: stepped down ${Math.round(stoppedAt - acquireSentAt)} ms after the standby sent its acquire`,
    );
    expect(leader.elector.writeBudgetMs()).toBe(0);
    expect(leader.state.stopReason).toBe('the lease is held by frozen-standby');
    // Within a retry period (its next read) and the time that read takes.
    expect(stoppedAt - acquireSentAt).toBeLessThanOrEqual(TIMINGS.retryPeriodMs + SLACK_MS);
    const after = attempts.filter((attempt) => attempt.startedAt > stoppedAt);
    expect(after.filter((attempt) => attempt.refused !== NOT_LEADER)).toEqual([]);
  });
});
