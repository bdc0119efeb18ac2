import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  DEFAULT_LEASE_TIMINGS,
  monotonicNow,
  nextLeaseStep,
  observe,
  releasedRecord,
  remainingWriteBudgetMs,
  validateTimings,
  type ClockReading,
  type LeaseRecord,
} from './leadership.ts';

const T0 = Date.parse('2026-11-28T10:00:00Z');
const HOUR = 3_600_000;
const timings = DEFAULT_LEASE_TIMINGS;
/** Both clocks at `ms` after the start: the wall clock from T0, the monotonic one from an arbitrary origin. */
const at = (ms: number, wallStepMs = 0): ClockReading => ({
  wallMs: T0 + ms + wallStepMs,
  monotonicMs: 50_000 + ms,
});
const M0 = at(0).monotonicMs;
const held = (holder: string, renewedAt = T0): LeaseRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: new Date(T0),
  renewTime: new Date(renewedAt),
  leaseTransitions: 3,
});

describe('nextLeaseStep', () => {
  it('creates the Lease, holding it, when there is none', () => {
    const step = nextLeaseStep('a', undefined, at(0), timings);
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
    const step = nextLeaseStep('a', observe(undefined, held('a'), M0), at(2_000), timings);
    expect(step).toEqual({
      action: 'renew',
      record: { ...held('a'), renewTime: new Date(T0 + 2_000) },
    });
  });

  it("waits while another replica's record changed less than a lease duration ago by our clock", () => {
    const seen = observe(undefined, held('b'), M0);
    expect(nextLeaseStep('a', seen, at(14_999), timings)).toEqual({ action: 'wait', holder: 'b' });
  });

  it('takes a Lease whose record has not changed for a whole lease duration, counting the transition', () => {
    const seen = observe(undefined, held('b'), M0);
    const step = nextLeaseStep('a', seen, at(15_000), timings);
    expect(step.action).toBe('acquire');
    expect(step).toMatchObject({ record: { holderIdentity: 'a', leaseTransitions: 4 } });
  });

  it("ignores the holder's own clock: a renewTime far in the past does not make the Lease expired", () => {
    // The holder's clock runs an hour behind ours; it is renewing all the same.
    const seen = observe(undefined, held('b', T0 - HOUR), M0);
    expect(nextLeaseStep('a', seen, at(1_000), timings).action).toBe('wait');
  });

  it('restarts the expiry clock when the record changes (the holder renewed)', () => {
    const first = observe(undefined, held('b'), M0);
    const renewed = observe(first, held('b', T0 + 10_000), M0 + 10_000);
    expect(renewed.changedAt).toBe(M0 + 10_000);
    expect(observe(renewed, held('b', T0 + 10_000), M0 + 12_000)).toBe(renewed);
    expect(nextLeaseStep('a', renewed, at(20_000), timings).action).toBe('wait');
    expect(nextLeaseStep('a', renewed, at(25_000), timings).action).toBe('acquire');
  });

  it('takes a released Lease at once', () => {
    const seen = observe(undefined, releasedRecord(held('b'), T0), M0);
    expect(nextLeaseStep('a', seen, at(0), timings)).toMatchObject({
      action: 'acquire',
      record: { holderIdentity: 'a', leaseDurationSeconds: 15 },
    });
  });

  it('uses the duration written in the Lease, so replicas configured differently agree', () => {
    const seen = observe(undefined, { ...held('b'), leaseDurationSeconds: 60 }, M0);
    expect(nextLeaseStep('a', seen, at(30_000), timings).action).toBe('wait');
    expect(nextLeaseStep('a', seen, at(60_000), timings).action).toBe('acquire');
  });

  it.each([
    ['forward', HOUR],
    ['backward', -HOUR],
  ])(
    'a step of our wall clock %s by an hour moves neither the expiry nor anything but the stamps written',
    (_, stepMs) => {
      const seen = observe(undefined, held('b'), M0);
      expect(nextLeaseStep('a', seen, at(14_999, stepMs), timings).action).toBe('wait');
      expect(nextLeaseStep('a', seen, at(15_000, stepMs), timings)).toMatchObject({
        action: 'acquire',
        // The stamps are the stepped wall clock's, as client-go writes them; no one compares them.
        record: { acquireTime: new Date(T0 + 15_000 + stepMs), renewTime: new Date(T0 + 15_000 + stepMs) },
      });
      const mine = observe(undefined, held('a'), M0);
      expect(nextLeaseStep('a', mine, at(2_000, stepMs), timings)).toMatchObject({
        action: 'renew',
        record: { renewTime: new Date(T0 + 2_000 + stepMs) },
      });
    },
  );
});

describe('remainingWriteBudgetMs', () => {
  it('is a renew deadline after the last renewal was sent, and nothing before the first', () => {
    expect(remainingWriteBudgetMs(M0, timings, M0)).toBe(10_000);
    expect(remainingWriteBudgetMs(M0, timings, M0 + 9_999)).toBe(1);
    expect(remainingWriteBudgetMs(M0, timings, M0 + 10_000)).toBe(0);
    expect(remainingWriteBudgetMs(undefined, timings, M0)).toBe(0);
  });

  it('is whole milliseconds, rounded down, although performance.now() has fractions', () => {
    expect(remainingWriteBudgetMs(M0 + 0.25, timings, M0 + 0.75)).toBe(9_999);
    expect(remainingWriteBudgetMs(M0, timings, M0 + 9_999.5)).toBe(0);
    expect(Number.isInteger(remainingWriteBudgetMs(monotonicNow(), timings, monotonicNow()))).toBe(true);
  });

  it('runs out before a standby that saw the same renewal may take the Lease', () => {
    // The standby sees the renewal no earlier than it was sent.
    const seen = observe(undefined, held('a'), M0);
    const firstAcquire = at(timings.leaseDurationMs);
    expect(nextLeaseStep('b', seen, at(timings.leaseDurationMs - 1), timings).action).toBe('wait');
    expect(nextLeaseStep('b', seen, firstAcquire, timings).action).toBe('acquire');
    expect(remainingWriteBudgetMs(M0, timings, firstAcquire.monotonicMs)).toBeLessThan(0);
  });
});

// The real clocks: vi's fake timers step Date with setSystemTime and leave performance.now() alone,
// as an NTP step or `date -s` moves CLOCK_REALTIME and not CLOCK_MONOTONIC.
describe('on the real clocks, a wall clock step', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    ['forward', 5 * HOUR],
    ['backward', -5 * HOUR],
  ])('%s by hours leaves the write budget and the expiry where they were', (_, stepMs) => {
    vi.useFakeTimers({ now: T0 });
    const renewSentAt = monotonicNow();
    const seen = observe(undefined, held('b'), monotonicNow());
    const reading = (): ClockReading => ({ wallMs: Date.now(), monotonicMs: monotonicNow() });

    vi.advanceTimersByTime(4_000);
    vi.setSystemTime(Date.now() + stepMs);
    expect(Date.now()).toBe(T0 + 4_000 + stepMs);
    expect(remainingWriteBudgetMs(renewSentAt, timings, monotonicNow())).toBe(6_000);
    expect(nextLeaseStep('a', seen, reading(), timings).action).toBe('wait');

    vi.advanceTimersByTime(5_999);
    expect(remainingWriteBudgetMs(renewSentAt, timings, monotonicNow())).toBe(1);
    vi.advanceTimersByTime(1);
    expect(remainingWriteBudgetMs(renewSentAt, timings, monotonicNow())).toBe(0);
    vi.advanceTimersByTime(4_999);
    expect(nextLeaseStep('a', seen, reading(), timings).action).toBe('wait');
    vi.advanceTimersByTime(1);
    expect(nextLeaseStep('a', seen, reading(), timings)).toMatchObject({
      action: 'acquire',
      record: { renewTime: new Date(T0 + 15_000 + stepMs) },
    });
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
