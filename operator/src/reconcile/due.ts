import { jitterMs } from '../schedule/jitter.ts';
import type { ResolvedSpec } from './spec.ts';

export interface DueTimes {
  /** expiresAt - rotateBefore, plus this key's jitter (never past the expiry). */
  readonly expiryDueAt: Date;
  /** The first schedule run after the key was issued, plus jitter; undefined without a schedule. */
  readonly scheduleDueAt: Date | undefined;
  /** The earlier of the two: what status.nextRotationAt shows and the requeue aims at. */
  readonly nextRotationAt: Date;
}

/**
 * When a key issued at `issuedAt` is due for rotation. Computed from the key's own issue time (which
 * the Secret records), so a restart, a crash or a replica change gives the same answer: a tick that
 * was missed while the operator was down rotates once, not once per missed tick.
 */
export function dueTimes(
  spec: ResolvedSpec,
  key: { readonly issuedAt: Date; readonly expiresAt: Date },
  jitterSeed: string,
  jitterWindowMs: number,
  minIntervalMs = 0,
): DueTimes {
  // Automatic rotations of one key are at least minIntervalMs apart, but never past its expiry: a
  // spec that asks for more churn than that (or a tenant's) costs every namespace's queue nothing.
  const earliest = Math.min(key.issuedAt.getTime() + minIntervalMs, key.expiresAt.getTime());
  const base = new Date(key.expiresAt.getTime() - spec.rotateBeforeMs);
  const expiryDueAt = new Date(
    Math.max(
      Math.min(base.getTime() + jitterMs(jitterSeed, base, jitterWindowMs), key.expiresAt.getTime()),
      earliest,
    ),
  );
  const tick = spec.schedule?.nextAfter(key.issuedAt);
  const scheduleDueAt =
    tick === undefined
      ? undefined
      : new Date(Math.max(tick.getTime() + jitterMs(jitterSeed, tick, jitterWindowMs), earliest));
  const nextRotationAt =
    scheduleDueAt !== undefined && scheduleDueAt < expiryDueAt ? scheduleDueAt : expiryDueAt;
  return { expiryDueAt, scheduleDueAt, nextRotationAt };
}
