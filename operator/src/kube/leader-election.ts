import {
  CoordinationV1Api,
  V1MicroTime,
  type KubeConfig,
  type V1Lease,
  type V1LeaseSpec,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

import {
  monotonicNow,
  nextLeaseStep,
  observe,
  releasedRecord,
  remainingWriteBudgetMs,
  type ClockReading,
  type LeaseRecord,
  type LeaseTimings,
  type Observation,
} from './leadership.ts';
import { makeClient } from './client.ts';
import { errorFields, isConflict, isNotFound, toKubeError } from './errors.ts';

export interface LeaderElectorOptions {
  readonly kc: KubeConfig;
  readonly logger: Logger;
  readonly namespace: string;
  readonly name: string;
  /** This replica, as written into the Lease (the Pod name). */
  readonly identity: string;
  readonly timings: LeaseTimings;
  /** Called once this replica holds the Lease. */
  readonly onStartedLeading: () => void;
  /** Called once when it no longer may act as leader: renew deadline passed, or released. */
  readonly onStoppedLeading: (reason: string) => void;
  /** Counts Lease requests; they bypass the shared rate limit so bulk work cannot starve renewals. */
  readonly onRequest?: (method: string) => void;
  /** The wall clock (Date.now()), only for acquireTime and renewTime written into the Lease. */
  readonly now?: () => number;
  /** The clock of every deadline (monotonicNow()): the write budget, the Lease's expiry. */
  readonly monotonicNow?: () => number;
}

const toDate = (value: unknown) =>
  value === undefined || value === null ? undefined : new Date(value as string);

function recordOf(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity,
    leaseDurationSeconds: spec.leaseDurationSeconds,
    acquireTime: toDate(spec.acquireTime),
    renewTime: toDate(spec.renewTime),
    leaseTransitions: spec.leaseTransitions,
  };
}

function specOf(record: LeaseRecord): V1LeaseSpec {
  // metav1.MicroTime wants six fractional digits, which V1MicroTime writes and a plain Date does not.
  const spec = {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: record.acquireTime && new V1MicroTime(record.acquireTime.getTime()),
    renewTime: record.renewTime && new V1MicroTime(record.renewTime.getTime()),
    leaseTransitions: record.leaseTransitions,
  };
  return Object.fromEntries(Object.entries(spec).filter(([, value]) => value !== undefined));
}

/**
 * The imperative shell of leader election (see leadership.ts for the rules). Fencing is by deadline:
 * `writeBudgetMs()` is how long this replica may still write, counted from the moment its last
 * successful renewal was *sent*; it reaches zero a renew deadline (10 s) after that, while no other
 * replica can take the Lease until a whole lease duration (15 s) after it *saw* that renewal. Both are
 * measured on the monotonic clock, so a step of the wall clock moves neither.
 */
export class LeaderElector {
  readonly #options: LeaderElectorOptions;
  readonly #api: CoordinationV1Api;
  readonly #now: () => number;
  readonly #monotonicNow: () => number;
  #observation: Observation | undefined;
  #resourceVersion: string | undefined;
  /** monotonicNow() when the last successful renewal was sent. */
  #renewedAt: number | undefined;
  #leading = false;
  #lastHolder: string | undefined;

  constructor(options: LeaderElectorOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => Date.now());
    this.#monotonicNow = options.monotonicNow ?? monotonicNow;
    // Its own client: no shared rate limit, and a timeout well inside the renew deadline.
    this.#api = makeClient(options.kc, CoordinationV1Api, {
      timeoutMs: Math.max(1_000, options.timings.renewDeadlineMs / 2),
      userAgent: `keyrotor/${options.identity}`,
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    });
  }

  /** Milliseconds this replica may still write as leader; 0 or less means not at all. */
  writeBudgetMs(): number {
    if (!this.#leading) return 0;
    return remainingWriteBudgetMs(this.#renewedAt, this.#options.timings, this.#monotonicNow());
  }

  /** Acquires, then renews every retry period, until `signal` aborts or the renew deadline passes. */
  async run(signal: AbortSignal): Promise<void> {
    const { timings, logger } = this.#options;
    while (!signal.aborted) {
      // Before the read: the budget then counts from before the renewal could reach the API server.
      const sentAt = this.#monotonicNow();
      let held = false;
      try {
        held = await this.#tryAcquireOrRenew();
      } catch (error) {
        logger.warn(
          { error: errorFields(toKubeError(this.#call('renew'), error)) },
          'could not acquire or renew the lease',
        );
      }
      if (held) {
        this.#renewedAt = sentAt;
        if (!this.#leading) {
          this.#leading = true;
          logger.info({ lease: this.#where(), identity: this.#options.identity }, 'became the leader');
          this.#options.onStartedLeading();
        }
      } else if (
        this.#leading &&
        (this.#lastHolder !== this.#options.identity || this.writeBudgetMs() <= 0)
      ) {
        // Another holder in the Lease means it is not ours whatever our budget says (our clock may have
        // stood still, e.g. through a suspend): stop at once rather than at the deadline.
        this.#leading = false;
        const reason =
          this.#lastHolder !== this.#options.identity
            ? `the lease is held by ${this.#lastHolder ?? 'another replica'}`
            : `could not renew the lease within the renew deadline (${timings.renewDeadlineMs / 1000}s)`;
        logger.error({ lease: this.#where() }, `stopped leading: ${reason}`);
        this.#options.onStoppedLeading(reason);
        return;
      }
      await sleep(timings.retryPeriodMs, signal);
    }
  }

  /** Steps down: stops writing at once, then clears the holder so a standby need not wait for expiry. */
  async release(): Promise<void> {
    if (!this.#leading) return;
    const canWrite = this.writeBudgetMs() > 0;
    this.#leading = false;
    this.#options.onStoppedLeading('released');
    const observation = this.#observation;
    if (!canWrite || observation === undefined) return;
    try {
      await this.#api.replaceNamespacedLease({
        namespace: this.#options.namespace,
        name: this.#options.name,
        body: this.#lease(releasedRecord(observation.record, this.#now())),
      });
      this.#options.logger.info({ lease: this.#where() }, 'released the lease');
    } catch (error) {
      // The Lease then expires on its own; a standby takes over a lease duration later.
      this.#options.logger.warn(
        { error: errorFields(toKubeError(this.#call('release'), error)) },
        'could not release the lease',
      );
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, timings, logger } = this.#options;
    let lease: V1Lease | undefined;
    try {
      lease = await this.#api.readNamespacedLease({ namespace, name });
    } catch (error) {
      if (!isNotFound(toKubeError(this.#call('read'), error))) throw error;
    }
    // Read once the Lease is in hand: a change counts from when it was seen, not from before the read.
    const now = this.#clock();
    this.#observation =
      lease === undefined ? undefined : observe(this.#observation, recordOf(lease), now.monotonicMs);
    this.#resourceVersion = lease?.metadata?.resourceVersion;
    const step = nextLeaseStep(identity, this.#observation, now, timings);
    if (step.action === 'wait') {
      if (step.holder !== this.#lastHolder)
        logger.info({ lease: this.#where(), holder: step.holder }, 'another replica leads');
      this.#lastHolder = step.holder;
      return false;
    }
    try {
      const written =
        step.action === 'create'
          ? await this.#api.createNamespacedLease({ namespace, body: this.#lease(step.record) })
          : await this.#api.replaceNamespacedLease({ namespace, name, body: this.#lease(step.record) });
      this.#observation = observe(this.#observation, recordOf(written), this.#monotonicNow());
      this.#resourceVersion = written.metadata?.resourceVersion;
      this.#lastHolder = identity;
      return true;
    } catch (error) {
      const failure = toKubeError(this.#call(step.action), error);
      // Another replica wrote first (409 on update, 409 AlreadyExists on create): not ours this round.
      if (isConflict(failure)) return false;
      throw failure;
    }
  }

  #clock(): ClockReading {
    return { wallMs: this.#now(), monotonicMs: this.#monotonicNow() };
  }

  #lease(record: LeaseRecord): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.#options.name,
        namespace: this.#options.namespace,
        ...(this.#resourceVersion === undefined ? {} : { resourceVersion: this.#resourceVersion }),
      },
      spec: specOf(record),
    };
  }

  #where(): string {
    return `${this.#options.namespace}/${this.#options.name}`;
  }

  #call(verb: string): string {
    return `${verb} Lease ${this.#where()}`;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
