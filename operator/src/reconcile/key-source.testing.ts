import { formatKey, type KeyOptions } from '../keys/format.ts';

/**
 * A deterministic stand-in for the CSPRNG in tests of decide(): the n-th key is formatted from bytes
 * that encode n, so every key differs and each test knows exactly which keys were issued.
 */
export function keySource() {
  let n = 0;
  const issued: string[] = [];
  return {
    issued,
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
