import { keyHash } from '../keys/format.ts';
import type { VerifierEntry } from './document.ts';

const HOUR = 3_600_000;

/** The verifier entry of `key`, valid from an hour before `around` (epoch ms) to an hour after it. */
export function verifierEntry(
  key: string,
  around: number,
  overrides: Partial<VerifierEntry> = {},
): VerifierEntry {
  const sha256 = keyHash(key);
  return {
    keyId: sha256.slice(0, 16),
    sha256,
    scopes: ['prices:*'],
    environment: 'production',
    notBefore: new Date(around - HOUR).toISOString(),
    notAfter: new Date(around + HOUR).toISOString(),
    consumer: { namespace: 'trading', name: 'bot' },
    ...overrides,
  };
}
