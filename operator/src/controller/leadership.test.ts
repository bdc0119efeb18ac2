import { describe, expect, it } from 'vitest';

import {
  DEFAULT_LEASE_TIMINGS,
  nextLeaseStep,
  observe,
  releasedRecord,
  validateTimings,
  type LeaseRecord,
} from './leadership.ts';

const T0 = Date.parse('2026-11-28T10:00:00Z');
const timings = DEFAULT_LEASE_TIMINGS;
const held = (holder: string, renewedAt = T0): LeaseRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: new Date(T0),
  renewTime: new Date(renewedAt),
  leaseTransitions: 3,
});

describe('nextLeaseStep', () => {
  it('creates the Lease, holding it, when there is none', () => {
    const step = nextLeaseStep('a', undefined, T0, timings);
    expect(step).toEqual({
      action: 'create',
      record: {
        holderIdentity: 'a',
        leaseDurationSeconds: 15,
        acquireTime: new Date(T0),
        renewTime: new Date(T0),
        leaseTransitions: 0,
      },
    });
  });

  it('renews its own Lease, keeping acquireTime and transitions', () => {
    const step = nextLeaseStep('a', observe(undefined, held('a'), T0), T0 + 2_000, timings);
    expect(step).toEqual({
      action: 'renew',
      record: { ...held('a'), renewTime: new Date(T0 + 2_000) },
    });
  });

  it("waits while another replica's record changed less than a lease duration ago by our clock", () => {
    const seen = observe(undefined, held('b'), T0);
    expect(nextLeaseStep('a', seen, T0 + 14_999, timings)).toEqual({ action: 'wait', holder: 'b' });
  });

  it('takes a Lease whose record has not changed for a whole lease duration, counting the transition', () => {
    const seen = observe(undefined, held('b'), T0);
    const step = nextLeaseStep('a', seen, T0 + 15_000, timings);
    expect(step.action).toBe('acquire');
    expect(step).toMatchObject({ record: { holderIdentity: 'a', leaseTransitions: 4 } });
  });

  it("ignores the holder's own clock: a renewTime far in the past does not make the Lease expired", () => {
    // The holder's clock runs an hour behind ours; it is renewing all the same.
    const seen = observe(undefined, held('b', T0 - 3_600_000), T0);
    expect(nextLeaseStep('a', seen, T0 + 1_000, timings).action).toBe('wait');
  });

  it('restarts the expiry clock when the record changes (the holder renewed)', () => {
    const first = observe(undefined, held('b'), T0);
    const renewed = observe(first, held('b', T0 + 10_000), T0 + 10_000);
    expect(renewed.changedAt).toBe(T0 + 10_000);
    expect(observe(renewed, held('b', T0 + 10_000), T0 + 12_000)).toBe(renewed);
    expect(nextLeaseStep('a', renewed, T0 + 20_000, timings).action).toBe('wait');
    expect(nextLeaseStep('a', renewed, T0 + 25_000, timings).action).toBe('acquire');
  });

  it('takes a released Lease at once', () => {
    const seen = observe(undefined, releasedRecord(held('b'), T0), T0);
    expect(nextLeaseStep('a', seen, T0, timings)).toMatchObject({
      action: 'acquire',
      record: { holderIdentity: 'a', leaseDurationSeconds: 15 },
    });
  });

  it('uses the duration written in the Lease, so replicas configured differently agree', () => {
    const seen = observe(undefined, { ...held('b'), leaseDurationSeconds: 60 }, T0);
    expect(nextLeaseStep('a', seen, T0 + 30_000, timings).action).toBe('wait');
    expect(nextLeaseStep('a', seen, T0 + 60_000, timings).action).toBe('acquire');
  });
});

describe('validateTimings', () => {
  it('accepts the defaults', () => {
    expect(validateTimings(DEFAULT_LEASE_TIMINGS)).toBeUndefined();
  });

  it.each([
    [
      { leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      'must be longer than the renew deadline',
    ],
    [
      { leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 },
      'must be longer than 1.2 × the retry period',
    ],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 50 }, 'at least 100ms'],
  ])('rejects %o', (given, message) => {
    expect(validateTimings(given)).toContain(message);
  });
});
