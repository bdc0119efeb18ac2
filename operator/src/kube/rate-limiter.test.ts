import { describe, expect, it } from 'vitest';

import { TokenBucket } from './rate-limiter.ts';

describe('TokenBucket', () => {
  it('lets a burst through, then paces requests at the rate', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).toEqual([0, 0, 0]);
    expect(bucket.reserve()).toBeCloseTo(100);
    expect(bucket.reserve()).toBeCloseTo(200);
    now = 1000; // ten tokens' worth of time, capped by the burst after paying back the debt
    expect(bucket.reserve()).toBe(0);
  });

  it('refills at the rate, never above the burst', () => {
    let now = 0;
    const bucket = new TokenBucket(2, 2, () => now);
    bucket.reserve();
    bucket.reserve();
    now = 60_000;
    expect([bucket.reserve(), bucket.reserve()]).toEqual([0, 0]);
    expect(bucket.reserve()).toBeCloseTo(500);
  });

  it("pauses every later request for the server's Retry-After, then paces again", () => {
    let now = 0;
    const bucket = new TokenBucket(10, 5, () => now);
    bucket.pauseFor(2_000);
    expect(bucket.reserve()).toBeCloseTo(2_100);
    expect(bucket.reserve()).toBeCloseTo(2_200);
    now = 10_000;
    expect(bucket.reserve()).toBe(0);
  });

  it('keeps the longer wait when a pause is shorter than the debt already owed', () => {
    const now = 0;
    const bucket = new TokenBucket(10, 1, () => now);
    for (let i = 0; i < 31; i += 1) bucket.reserve(); // 3 s owed
    bucket.pauseFor(1_000);
    expect(bucket.reserve()).toBeCloseTo(3_100);
  });

  it('refuses a rate that cannot work', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0)).toThrow(RangeError);
  });
});
