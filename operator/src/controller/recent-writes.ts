interface Written<T> {
  readonly object: T;
  readonly resourceVersion: string;
  readonly at: number;
}

const DECIMAL = /^[0-9]{1,15}$/;

/**
 * Has the cache reached the written version? resourceVersions are opaque by contract, but etcd's are
 * increasing integers: a cache already past the write (a later change by someone else, delivered
 * before anyone read this one) is fresher than the write and must win, or that change would be
 * hidden until the entry expires. Versions that are not plain integers are only compared for equality.
 */
function atOrAfter(cached: string | undefined, written: string): boolean {
  if (cached === undefined) return false;
  if (DECIMAL.test(cached) && DECIMAL.test(written)) return Number(cached) >= Number(written);
  return cached === written;
}

interface Versioned {
  metadata?: { resourceVersion?: string; uid?: string } | undefined;
}

/**
 * Read-your-writes over an informer cache. After keyrotor writes an object, the cache may still show
 * the old version for a moment; a reconcile that trusted it could issue a key twice. Until the cache
 * shows the written resourceVersion (watch events arrive in order, so older versions come first),
 * reads return what was written. An entry expires after `ttlMs` in case the watch skipped that
 * version (a relist), and is dropped at once when a write conflicts or the watch (or a relist) reports
 * the written object deleted: a deletion is never hidden behind the last write.
 */
export class RecentWrites<T extends Versioned> {
  readonly #written = new Map<string, Written<T>>();
  /**
   * uids reported deleted, with when and at which version: a write answered after its object's
   * deletion was seen is not kept (a later version of the same uid was not deleted: it was only
   * relabelled out of the watch, and repaired).
   */
  readonly #deletedUids = new Map<string, { at: number; resourceVersion: string | undefined }>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  // Monotonic by default: a wall clock step back must not keep entries for the length of the step.
  constructor(ttlMs = 30_000, now: () => number = () => performance.now()) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  record(key: string, object: T): void {
    const resourceVersion = object.metadata?.resourceVersion;
    if (resourceVersion === undefined) return;
    const gone = object.metadata?.uid === undefined ? undefined : this.#deletedUids.get(object.metadata.uid);
    if (
      gone !== undefined &&
      (gone.resourceVersion === undefined || atOrAfter(gone.resourceVersion, resourceVersion))
    ) {
      this.#written.delete(key);
      return;
    }
    this.#written.set(key, { object, resourceVersion, at: this.#now() });
  }

  /**
   * `key` was reported deleted (`object` as last seen). What was written of that object is dropped: the
   * same uid, or, without uids, a deletion at or after the written version. A deletion of an older
   * object of the same name (keyrotor deleting a Secret to recreate it) leaves the newer write alone.
   */
  deleted(key: string, object: T | undefined): void {
    const now = this.#now();
    for (const [uid, gone] of this.#deletedUids) {
      if (now - gone.at <= this.#ttlMs) break;
      this.#deletedUids.delete(uid);
    }
    const uid = object?.metadata?.uid;
    if (uid !== undefined) {
      this.#deletedUids.delete(uid);
      this.#deletedUids.set(uid, { at: now, resourceVersion: object?.metadata?.resourceVersion });
    }
    const written = this.#written.get(key);
    if (written === undefined) return;
    const writtenUid = written.object.metadata?.uid;
    const same =
      uid !== undefined && writtenUid !== undefined
        ? uid === writtenUid
        : atOrAfter(object?.metadata?.resourceVersion, written.resourceVersion);
    if (same) this.#written.delete(key);
  }

  drop(key: string): void {
    this.#written.delete(key);
  }

  /** The freshest known version of `key`, given what the cache holds. */
  read(key: string, cached: T | undefined): T | undefined {
    const written = this.#written.get(key);
    if (written === undefined) return cached;
    const caughtUp = atOrAfter(cached?.metadata?.resourceVersion, written.resourceVersion);
    if (caughtUp || this.#now() - written.at > this.#ttlMs) {
      this.#written.delete(key);
      return cached;
    }
    return written.object;
  }

  get size(): number {
    return this.#written.size;
  }
}
