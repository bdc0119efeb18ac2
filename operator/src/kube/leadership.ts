/**
 * Leader election on a coordination.k8s.io Lease, the pure part: given the Lease as last read, what
 * this replica should write, if anything. The algorithm is client-go's leaderelection: a Lease held by
 * someone else counts as expired only when its record has not changed for a whole lease duration by
 * *our* clock (never by comparing their renewTime with our clock, which may be skewed), and every
 * write carries the resourceVersion read, so two replicas taking an expired Lease at once cannot both win.
 *
 * "Our clock" is the monotonic one for every deadline (expiry, the write budget): NTP, a VM resuming or
 * an operator can step the wall clock by hours, which would stretch a deposed leader's write budget or
 * make a standby take a Lease that is still held. The wall clock only stamps acquireTime and renewTime,
 * as client-go does; nothing here compares those stamps with a clock.
 */

/**
 * Milliseconds on CLOCK_MONOTONIC (performance.now()): it never steps, whatever happens to Date.now().
 * Only differences between two readings mean anything. Like Go's monotonic clock, which client-go
 * uses, it stands still while the machine is suspended: a leader resumed from a suspend stops once a
 * read of the Lease names another holder (LeaderElector.run), not at its deadline.
 */
export const monotonicNow = (): number => performance.now();

/** Both clocks, read together. */
export interface ClockReading {
  /** Date.now(): only what is written into the Lease. */
  readonly wallMs: number;
  /** monotonicNow(): every deadline. */
  readonly monotonicMs: number;
}

export interface LeaseTimings {
  /** How long a holder keeps the Lease without renewing it (controller-runtime: 15 s). */
  readonly leaseDurationMs: number;
  /** A leader that has not renewed for this long stops writing and steps down (10 s). */
  readonly renewDeadlineMs: number;
  /** Time between attempts to acquire or renew (2 s). */
  readonly retryPeriodMs: number;
}

export const DEFAULT_LEASE_TIMINGS: LeaseTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** The fields of Lease.spec that election uses. */
export interface LeaseRecord {
  readonly holderIdentity?: string | undefined;
  readonly leaseDurationSeconds?: number | undefined;
  readonly acquireTime?: Date | undefined;
  readonly renewTime?: Date | undefined;
  readonly leaseTransitions?: number | undefined;
}

/** What this replica last saw of the Lease, and when (by its own clock) the record last changed. */
export interface Observation {
  readonly record: LeaseRecord;
  /** A fingerprint of the record; a change restarts the expiry clock. */
  readonly fingerprint: string;
  /** monotonicNow() when this replica first saw the record as it is. */
  readonly changedAt: number;
}

export type LeaseStep =
  /** No Lease yet: create it holding it. */
  | { readonly action: 'create'; readonly record: LeaseRecord }
  /** Ours (renew) or free or expired (acquire): write this record over the one read. */
  | { readonly action: 'renew' | 'acquire'; readonly record: LeaseRecord }
  /** Someone else holds it and it has not expired: try again after the retry period. */
  | { readonly action: 'wait'; readonly holder: string };

export function fingerprint(record: LeaseRecord): string {
  return JSON.stringify([
    record.holderIdentity ?? '',
    record.leaseDurationSeconds ?? 0,
    record.acquireTime?.getTime() ?? 0,
    record.renewTime?.getTime() ?? 0,
    record.leaseTransitions ?? 0,
  ]);
}

/**
 * The observation after reading `record` at `monotonicMs` (taken once the read returned, as client-go
 * does, so a slow read cannot date the change earlier than it was seen): the clock restarts only when
 * the record changed.
 */
export function observe(
  previous: Observation | undefined,
  record: LeaseRecord,
  monotonicMs: number,
): Observation {
  const print = fingerprint(record);
  return previous?.fingerprint === print ? previous : { record, fingerprint: print, changedAt: monotonicMs };
}

/**
 * The next step for `identity`. `observation` is undefined when the Lease does not exist. The
 * expiry uses the duration the holder wrote into the Lease, so replicas configured differently agree.
 */
export function nextLeaseStep(
  identity: string,
  observation: Observation | undefined,
  now: ClockReading,
  timings: LeaseTimings,
): LeaseStep {
  const durationSeconds = Math.ceil(timings.leaseDurationMs / 1000);
  const at = new Date(now.wallMs);
  if (observation === undefined) {
    return {
      action: 'create',
      record: {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: at,
        renewTime: at,
        leaseTransitions: 0,
      },
    };
  }
  const { record } = observation;
  const holder = record.holderIdentity ?? '';
  if (holder === identity) {
    return {
      action: 'renew',
      record: { ...record, leaseDurationSeconds: durationSeconds, renewTime: at },
    };
  }
  const heldForMs = (record.leaseDurationSeconds ?? durationSeconds) * 1000;
  if (holder !== '' && now.monotonicMs < observation.changedAt + heldForMs) return { action: 'wait', holder };
  return {
    action: 'acquire',
    record: {
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: at,
      renewTime: at,
      leaseTransitions: (record.leaseTransitions ?? 0) + 1,
    },
  };
}

/** The record a leader writes as it steps down, so a standby takes over without waiting for expiry. */
export function releasedRecord(record: LeaseRecord, wallMs: number): LeaseRecord {
  return { ...record, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new Date(wallMs) };
}

/**
 * How long a leader may still write: a renew deadline after its last successful renewal was *sent*
 * (`renewSentAt`, monotonicNow()), 0 or less when it may not. Another replica takes the Lease no earlier
 * than a lease duration after it *saw* that renewal, so the two never write at once. Both ends are on
 * each replica's monotonic clock, so no step of any wall clock can make them overlap. Whole
 * milliseconds, rounded down: timers (AbortSignal.timeout) refuse fractions, and down is the safe side.
 */
export function remainingWriteBudgetMs(
  renewSentAt: number | undefined,
  timings: LeaseTimings,
  monotonicMs: number,
): number {
  return renewSentAt === undefined ? 0 : Math.floor(renewSentAt + timings.renewDeadlineMs - monotonicMs);
}

/** Checks the timings the way client-go does, with messages for the flags that set them. */
export function validateTimings(timings: LeaseTimings): string | undefined {
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = timings;
  if (!(leaseDurationMs > renewDeadlineMs))
    return `the lease duration (${leaseDurationMs / 1000}s) must be longer than the renew deadline (${renewDeadlineMs / 1000}s)`;
  if (!(renewDeadlineMs > retryPeriodMs * 1.2))
    return `the renew deadline (${renewDeadlineMs / 1000}s) must be longer than 1.2 × the retry period (${retryPeriodMs / 1000}s)`;
  if (!(retryPeriodMs >= 100)) return `the retry period (${retryPeriodMs}ms) must be at least 100ms`;
  return undefined;
}
