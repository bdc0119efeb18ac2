import { describe, expect, it } from 'vitest';

import { RecentWrites } from './recent-writes.ts';

const object = (resourceVersion: string, spec: string) => ({ metadata: { resourceVersion }, spec });

describe('RecentWrites', () => {
  it('returns what was written until the cache shows that version, then the cache', () => {
    const writes = new RecentWrites<ReturnType<typeof object>>();
    writes.record('a', object('100', 'written'));
    expect(writes.read('a', object('99', 'stale'))?.spec).toBe('written');
    expect(writes.read('a', object('100', 'cached'))?.spec).toBe('cached');
    expect(writes.size).toBe(0);
  });

  it('lets a cache already past the write win, so a later change by someone else is not hidden', () => {
    const writes = new RecentWrites<ReturnType<typeof object>>();
    writes.record('a', object('100', 'status written'));
    expect(writes.read('a', object('101', 'spec edited after'))?.spec).toBe('spec edited after');
  });

  it('compares versions that are not integers only for equality, and forgets writes after the ttl', () => {
    let now = 0;
    const writes = new RecentWrites<ReturnType<typeof object>>(1_000, () => now);
    writes.record('a', object('v2', 'written'));
    expect(writes.read('a', object('v3', 'cached'))?.spec).toBe('written');
    now = 1_001;
    expect(writes.read('a', object('v3', 'cached'))?.spec).toBe('cached');
  });
});
