import { createHash } from 'node:crypto';

/**
 * A delay in [0, windowMs) that is the same for the same key and due time on every run of every
 * replica: many keys due at one instant spread over the window, and a restart does not move them.
 */
export function jitterMs(seed: string, dueAt: Date, windowMs: number): number {
  if (windowMs <= 0) return 0;
  const digest = createHash('sha256').update(`${seed}\n${dueAt.toISOString()}`).digest();
  return digest.readUInt32BE(0) % Math.floor(windowMs);
}
