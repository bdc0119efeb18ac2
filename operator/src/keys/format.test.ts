import { describe, expect, it } from 'vitest';

import { base62Length, encodeBase62, encodeInteger, encodeSafeInteger } from './base62.ts';
import {
  KEY_DETECTION_REGEX,
  formatKey,
  generateKey,
  keyHash,
  keyId,
  parseKey,
  validateKeyOptions,
} from './format.ts';

const options = { prefix: 'kr', environment: 'production', bits: 256 } as const;

describe('key format', () => {
  it('formats <prefix>_<env tag>_<base62 body><6-char checksum>', () => {
    const key = formatKey(options, new Uint8Array(32).fill(255));
    expect(key).toMatch(/^kr_live_[0-9A-Za-z]{43}[0-9A-Za-z]{6}$/);
    expect(key.length).toBe('kr_live_'.length + base62Length(256) + 6);
  });

  it('tags each environment so production keys stand out', () => {
    const random = new Uint8Array(32);
    expect(formatKey({ ...options, environment: 'production' }, random)).toMatch(/^kr_live_/);
    expect(formatKey({ ...options, environment: 'staging' }, random)).toMatch(/^kr_stg_/);
    expect(formatKey({ ...options, environment: 'test' }, random)).toMatch(/^kr_test_/);
    expect(formatKey({ ...options, environment: 'development' }, random)).toMatch(/^kr_dev_/);
  });

  it('encodes bytes as a fixed-width number, losing no entropy', () => {
    expect(encodeBase62(new Uint8Array([0]), 2)).toBe('00');
    expect(encodeBase62(new Uint8Array([61]), 2)).toBe('0z');
    expect(encodeBase62(new Uint8Array([62]), 2)).toBe('10');
    // Distinct inputs stay distinct: 2^16 values in 3 base62 digits (62^3 > 2^16).
    const seen = new Set<string>();
    for (let value = 0; value < 65_536; value += 257) {
      seen.add(encodeBase62(new Uint8Array([value >> 8, value & 255])));
    }
    expect(seen.size).toBe(Math.ceil(65_536 / 257));
  });

  it('generates distinct keys from the CSPRNG', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateKey(options)));
    expect(keys.size).toBe(200);
    for (const key of keys) expect(parseKey(key).ok).toBe(true);
  });

  it('refuses fewer than 128 bits, more than 512, and prefixes that break the format', () => {
    expect(validateKeyOptions({ ...options, bits: 120 })).toMatch(/from 128 to 512/);
    expect(validateKeyOptions({ ...options, bits: 520 })).toMatch(/from 128 to 512/);
    expect(validateKeyOptions({ ...options, bits: 130 })).toMatch(/multiple of 8/);
    expect(validateKeyOptions({ ...options, prefix: 'K_R' })).toMatch(/keyPrefix/);
    expect(validateKeyOptions({ ...options, prefix: 'x' })).toMatch(/keyPrefix/);
    expect(() => generateKey({ ...options, bits: 64 })).toThrow(RangeError);
    expect(validateKeyOptions({ ...options, bits: 128 })).toBeUndefined();
  });

  it('parses what it formats: prefix, environment and entropy, for every allowed size', () => {
    for (const bits of [128, 192, 256, 384, 512]) {
      const parsed = parseKey(generateKey({ prefix: 'mkt', environment: 'test', bits }));
      expect(parsed).toEqual({ ok: true, key: { prefix: 'mkt', environment: 'test', bits } });
    }
  });

  it('rejects a key with one character changed (checksum) and look-alikes, without echoing them', () => {
    const key = generateKey(options);
    const position = 20;
    const changed = key.slice(0, position) + (key[position] === 'a' ? 'b' : 'a') + key.slice(position + 1);
    const result = parseKey(changed);
    expect(result).toEqual({ ok: false, reason: 'checksum mismatch' });
    expect(parseKey('kr_prod_abc').ok).toBe(false);
    expect(parseKey(key.slice(0, -1)).ok).toBe(false);
    expect(parseKey(`${key}x`).ok).toBe(false);
    expect(JSON.stringify(parseKey(changed))).not.toContain(changed);
  });

  it('detects keys in text with the published regex', () => {
    const key = generateKey(options);
    const text = `config: token=${key} and more`;
    expect(text.match(KEY_DETECTION_REGEX)).toEqual([key]);
  });

  it('derives a 16-hex-digit fingerprint and a SHA-256 hash, neither revealing the key', () => {
    const key = generateKey(options);
    expect(keyId(key)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyHash(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(keyHash(key).startsWith(keyId(key))).toBe(true);
    expect(keyId(generateKey(options))).not.toBe(keyId(key));
  });
});

describe('base62 of a safe integer (the checksum fast path)', () => {
  it('writes the same digits as the BigInt encoder', () => {
    for (const value of [0, 1, 61, 62, 3_843, 3_844, 2 ** 31, 2 ** 32 - 1])
      expect(encodeSafeInteger(value, 6)).toBe(encodeInteger(BigInt(value), 6));
  });

  it('refuses what it cannot write', () => {
    expect(() => encodeSafeInteger(-1, 6)).toThrow(RangeError);
    expect(() => encodeSafeInteger(62 ** 6, 6)).toThrow('more than 6');
  });
});

describe('the README', () => {
  it('publishes the detection regex the code uses', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(`    ${KEY_DETECTION_REGEX.source}\n`);
  });
});
