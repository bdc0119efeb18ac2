import { describe, expect, it } from 'vitest';

import { RecentWrites } from './recent-writes.ts';

const object = (resourceVersion: string, spec: string, uid?: string) => ({
  metadata: { resourceVersion, ...(uid === undefined ? {} : { uid }) },
  spec,
});

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

  it('does not hide a deletion of the written object, reported by the watch or by a relist', () => {
    const writes = new RecentWrites<ReturnType<typeof object>>();
    writes.record('a', object('100', 'status written', 'u1'));
    expect(writes.read('a', undefined)?.spec).toBe('status written');
    // A relist reports the object as its old cache held it: an older version, but the same uid.
    writes.deleted('a', object('90', 'as last cached', 'u1'));
    expect(writes.read('a', undefined)).toBeUndefined();
    // Without uids, a deletion at or after the written version.
    writes.record('b', object('100', 'written'));
    writes.deleted('b', object('99', 'older'));
    expect(writes.read('b', undefined)?.spec).toBe('written');
    writes.deleted('b', object('101', 'deleted'));
    expect(writes.read('b', undefined)).toBeUndefined();
  });

  it('keeps a write that replaced a deleted object, and forgets a write answered after its deletion was seen', () => {
    const writes = new RecentWrites<ReturnType<typeof object>>();
    // keyrotor deleted the Secret (uid u1) and created it again (u2); the deletion of u1 arrives later.
    writes.record('a', object('101', 'recreated', 'u2'));
    writes.deleted('a', object('100', 'old', 'u1'));
    expect(writes.read('a', undefined)?.spec).toBe('recreated');
    // A status write whose answer comes after the watch reported the ApiKey deleted.
    writes.deleted('b', object('200', 'deleted', 'u3'));
    writes.record('b', object('199', 'status written before the deletion', 'u3'));
    expect(writes.read('b', undefined)).toBeUndefined();
    // Relabelled out of the watch (a "deletion" of the watch) and then repaired: a later version is kept.
    writes.record('b', object('201', 'repaired', 'u3'));
    expect(writes.read('b', undefined)?.spec).toBe('repaired');
  });
});
