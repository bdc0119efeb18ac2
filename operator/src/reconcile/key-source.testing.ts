import { formatKey, type KeyOptions } from '../keys/format.ts';

/** A fixed seal key for tests of decide() and the verifier plan: sealed fixtures come out the same. */
export const TEST_SEAL_KEY: Uint8Array = new Uint8Array(32).fill(7);

/**
 * A deterministic stand-in for the CSPRNG in tests of decide(): the n-th key is formatted from bytes
 * that encode n, so every key differs and each test knows exactly which keys were issued.
 */
export function keySource() {
  let n = 0;
  const issued: string[] = [];
  return {
    issued,
    sealKey: TEST_SEAL_KEY,
    generateKey: (options: KeyOptions) => {
      n += 1;
      const random = new Uint8Array(options.bits / 8);
      new DataView(random.buffer).setUint32(0, n);
      const key = formatKey(options, random);
      issued.push(key);
      return key;
    },
  };
}
