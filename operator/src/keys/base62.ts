const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE = 62n;

/** Characters needed to write any `bits`-bit number in base62. */
export function base62Length(bits: number): number {
  return Math.ceil(bits / Math.log2(62));
}

/**
 * Encodes bytes as a fixed-width base62 number. Treating the bytes as one integer (rather than mapping
 * each byte to a character) keeps every bit of entropy and introduces no modulo bias.
 */
export function encodeBase62(bytes: Uint8Array, width = base62Length(bytes.length * 8)): string {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return encodeInteger(value, width);
}

/** Like encodeInteger, for a safe integer: no BigInt, as checksums are computed on every verification. */
export function encodeSafeInteger(value: number, width: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${value} is not a safe whole number`);
  let out = '';
  for (let rest = value; rest > 0; rest = Math.floor(rest / 62)) out = ALPHABET.charAt(rest % 62) + out;
  if (out.length > width) throw new RangeError(`value needs ${out.length} base62 digits, more than ${width}`);
  return out.padStart(width, '0');
}

export function encodeInteger(value: bigint, width: number): string {
  let out = '';
  let rest = value;
  while (rest > 0n) {
    out = ALPHABET.charAt(Number(rest % BASE)) + out;
    rest /= BASE;
  }
  if (out.length > width) throw new RangeError(`value needs ${out.length} base62 digits, more than ${width}`);
  return out.padStart(width, '0');
}
