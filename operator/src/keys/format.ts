import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

import type { Environment } from '../api/types.ts';
import { base62Length, encodeBase62, encodeSafeInteger } from './base62.ts';

// Key format: <prefix>_<env tag>_<body><checksum>
//   prefix    a short lowercase tag chosen per ApiKey (default "kr")
//   env tag   live (production), stg, test or dev: a production key is recognisable at a glance
//   body      the random bits, as a fixed-width base62 number
//   checksum  CRC32 of everything before it, 6 base62 digits: scanners can tell a real key from a
//             look-alike offline, as GitHub's token format allows.

export const DEFAULT_KEY_PREFIX = 'kr';
export const DEFAULT_KEY_BITS = 256;
export const MIN_KEY_BITS = 128;
export const MAX_KEY_BITS = 512;
const CHECKSUM_LENGTH = 6;

export const ENVIRONMENT_TAGS: Readonly<Record<Environment, string>> = {
  production: 'live',
  staging: 'stg',
  test: 'test',
  development: 'dev',
};

/** Finds keyrotor keys in text (for secret scanners); validate each match with parseKey. */
export const KEY_DETECTION_REGEX = /\b[a-z][a-z0-9]{1,11}_(?:live|stg|test|dev)_[0-9A-Za-z]{28,}\b/g;

const PREFIX_PATTERN = /^[a-z][a-z0-9]{1,11}$/;
const KEY_PATTERN = /^([a-z][a-z0-9]{1,11})_(live|stg|test|dev)_([0-9A-Za-z]+)$/;

function checksum(text: string): string {
  return encodeSafeInteger(crc32(text), CHECKSUM_LENGTH);
}

export interface KeyOptions {
  readonly prefix: string;
  readonly environment: Environment;
  readonly bits: number;
}

export function validateKeyOptions({ prefix, bits }: KeyOptions): string | undefined {
  if (!PREFIX_PATTERN.test(prefix)) {
    return `keyPrefix "${prefix}" must be 2 to 12 lowercase letters or digits, starting with a letter`;
  }
  if (!Number.isInteger(bits) || bits % 8 !== 0 || bits < MIN_KEY_BITS || bits > MAX_KEY_BITS) {
    return `keyBits ${bits} must be a multiple of 8 from ${MIN_KEY_BITS} to ${MAX_KEY_BITS}`;
  }
  return undefined;
}

/** Formats a key from random bytes; `generateKey` supplies them from the CSPRNG. */
export function formatKey(options: KeyOptions, random: Uint8Array): string {
  const problem = validateKeyOptions(options);
  if (problem !== undefined) throw new RangeError(problem);
  if (random.length * 8 !== options.bits) {
    throw new RangeError(`expected ${options.bits / 8} random bytes, got ${random.length}`);
  }
  const head = `${options.prefix}_${ENVIRONMENT_TAGS[options.environment]}_${encodeBase62(random)}`;
  return head + checksum(head);
}

/** A new key with `bits` bits from the operating system's CSPRNG. */
export function generateKey(options: KeyOptions): string {
  return formatKey(options, randomBytes(options.bits / 8));
}

/** The public fingerprint of a key: safe to show in status, events and logs. */
export function keyId(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** SHA-256 of a key, hex: what a verifier stores instead of the key. */
export function keyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export interface ParsedKey {
  readonly prefix: string;
  readonly environment: Environment;
  /** Bits of entropy the body can hold. */
  readonly bits: number;
}

export type ParseResult = { ok: true; key: ParsedKey } | { ok: false; reason: string };

/** Key sizes by the length of their base62 body; computed once, as verifiers parse on every request. */
const BITS_BY_BODY_LENGTH = new Map<number, number>();
for (let bits = MAX_KEY_BITS; bits >= MIN_KEY_BITS; bits -= 8)
  BITS_BY_BODY_LENGTH.set(base62Length(bits), bits);

const ENVIRONMENT_BY_TAG = new Map(
  Object.entries(ENVIRONMENT_TAGS).map(([environment, tag]) => [tag, environment as Environment]),
);

/**
 * Checks a key's shape, environment tag and checksum without any secret: for scanners, verifiers and
 * `keyrotor check`. The reason never repeats the key.
 */
export function parseKey(key: string): ParseResult {
  const match = KEY_PATTERN.exec(key);
  if (!match) return { ok: false, reason: 'not a keyrotor key: expected <prefix>_<env>_<base62>' };
  const [, prefix = '', tag = '', rest = ''] = match;
  const environment = ENVIRONMENT_BY_TAG.get(tag);
  if (environment === undefined) return { ok: false, reason: 'unknown environment tag' };
  const bits = BITS_BY_BODY_LENGTH.get(rest.length - CHECKSUM_LENGTH);
  if (bits === undefined) return { ok: false, reason: 'key body has an unexpected length' };
  const head = key.slice(0, key.length - CHECKSUM_LENGTH);
  if (checksum(head) !== key.slice(-CHECKSUM_LENGTH)) return { ok: false, reason: 'checksum mismatch' };
  return { ok: true, key: { prefix, environment, bits } };
}
