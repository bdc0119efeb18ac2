import { createHash, timingSafeEqual } from 'node:crypto';

import { parseKey } from '../keys/format.ts';
import type { VerifierDocument, VerifierEntry } from './document.ts';

export type VerifyReason = 'Valid' | 'Malformed' | 'Unknown' | 'Expired' | 'InsufficientScope';

/** What a verification says. It names the key by its id, never by the key. */
export type VerifyResult =
  | { readonly valid: false; readonly reason: 'Malformed' | 'Unknown' }
  | (KnownKey & { readonly valid: false; readonly reason: 'Expired' | 'InsufficientScope' })
  | (KnownKey & { readonly valid: true; readonly reason: 'Valid' });

/** What a verifier knows of a listed key: its id and bounds, never the key. */
export interface KnownKey {
  readonly keyId: string;
  readonly scopes: readonly string[];
  readonly environment: string;
  readonly consumer: { readonly namespace: string; readonly name: string };
}

export interface VerifyOptions {
  /** A scope the request needs; a key scope ending in `*` grants every scope with that prefix. */
  readonly scope?: string;
  /** The clock, for tests; the time is read at every call. */
  readonly now?: () => number;
}

interface Compiled {
  readonly entry: VerifierEntry;
  readonly hash: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Does any of `granted` cover `needed`? `prices:*` covers `prices:read`; `*` covers everything. */
export function scopeGranted(granted: readonly string[], needed: string): boolean {
  return granted.some((scope) =>
    scope.endsWith('*') ? needed.startsWith(scope.slice(0, -1)) : scope === needed,
  );
}

/**
 * Checks presented keys against a verifier document. The order of checks keeps work and leaks small:
 * shape and checksum first (no hashing of garbage), then the hash is looked up by its public prefix
 * and the whole hash compared in constant time, then validity times against the clock at call time,
 * then the scope.
 */
export class Verifier {
  readonly revision: number;
  readonly #byKeyId: Map<string, Compiled>;

  constructor(document: VerifierDocument) {
    this.revision = document.revision;
    this.#byKeyId = new Map(
      document.keys.map((entry) => [
        entry.keyId,
        {
          entry,
          hash: Buffer.from(entry.sha256, 'hex'),
          notBefore: Date.parse(entry.notBefore),
          notAfter: Date.parse(entry.notAfter),
        },
      ]),
    );
  }

  /** Number of keys the document lists (current and previous ones). */
  get size(): number {
    return this.#byKeyId.size;
  }

  verify(presented: string, options: VerifyOptions = {}): VerifyResult {
    if (!parseKey(presented).ok) return { valid: false, reason: 'Malformed' };
    const hash = createHash('sha256').update(presented).digest();
    const found = this.#byKeyId.get(hash.toString('hex', 0, 8));
    if (found === undefined || !timingSafeEqual(found.hash, hash)) return { valid: false, reason: 'Unknown' };
    const { entry } = found;
    const about = {
      keyId: entry.keyId,
      scopes: entry.scopes,
      environment: entry.environment,
      consumer: entry.consumer,
    };
    const now = (options.now ?? Date.now)();
    if (now < found.notBefore || now >= found.notAfter) return { valid: false, reason: 'Expired', ...about };
    if (options.scope !== undefined && !scopeGranted(entry.scopes, options.scope))
      return { valid: false, reason: 'InsufficientScope', ...about };
    return { valid: true, reason: 'Valid', ...about };
  }
}
