import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

import { keyHash } from '../keys/format.ts';

/**
 * The seal on a key Secret: an HMAC-SHA256, under a key only keyrotor holds, over everything in the
 * Secret that decides which keys are valid and until when. Anyone who may write the Secret can change
 * those fields but cannot seal the result, so keyrotor can tell its own writes from a tenant's
 * (docs/adr/0002-sealed-key-secrets.md). Pure: the seal key is an argument.
 */

/** Written in front of the MAC, so a later format can be told apart. */
export const SEAL_VERSION = 'v1';
/** A seal key shorter than this is refused: HMAC-SHA256 wants at least its output size. */
export const MIN_SEAL_KEY_BYTES = 32;

/** What a seal covers: the Secret's bookkeeping as keyrotor decided it, for one ApiKey (by uid). */
export interface SealedFields {
  readonly uid: string;
  /** Grows by one with every change of key (issue, rotation, revocation): replays of older Secrets show. */
  readonly sequence: number;
  readonly key: string | undefined;
  readonly issuedAt: Date | undefined;
  readonly expiresAt: Date | undefined;
  readonly previousKey: string | undefined;
  readonly previousExpiresAt: Date | undefined;
  readonly issueReason: string | undefined;
  readonly rotateHandled: string | undefined;
  readonly revokedKeyId: string | undefined;
  /**
   * The data parts rendered from spec.secretTemplate.data, their names and values as one SHA-256
   * (secret-data.ts); undefined when none were. They carry the key: editing one is editing the key.
   */
  readonly renderedDigest?: string | undefined;
}

const iso = (time: Date | undefined) => (time === undefined ? null : time.toISOString());
const hashOf = (key: string | undefined) => (key === undefined ? null : keyHash(key));

/**
 * Which of the optional parts keyrotor wrote: c (the current key and its times), p (the previous key),
 * r (the handled rotate value), v (the revoked key id), d (rendered data parts). It is part of the seal, so a part someone else
 * adds to the Secret is known not to be keyrotor's and ignored, rather than breaking the seal.
 */
export type SealMask = string;

export function maskOf(fields: SealedFields): SealMask {
  return [
    fields.key === undefined ? '' : 'c',
    fields.previousKey === undefined ? '' : 'p',
    fields.rotateHandled === undefined ? '' : 'r',
    fields.revokedKeyId === undefined ? '' : 'v',
    fields.renderedDigest === undefined ? '' : 'd',
  ].join('');
}

/** The mask a seal was made with, or undefined when `seal` is not one of keyrotor's seals. */
export function sealMaskOf(seal: string | undefined): SealMask | undefined {
  return seal === undefined ? undefined : /^v1\.(c?p?r?v?d?)\.[A-Za-z0-9_-]{43}$/.exec(seal)?.[1];
}

/** The message the MAC is over: a JSON array, so no field can run into the next. */
function message(fields: SealedFields): string {
  // Appended only when there are rendered parts, so every seal made before they existed still matches.
  const rendered = fields.renderedDigest === undefined ? [] : [fields.renderedDigest];
  return JSON.stringify([
    SEAL_VERSION,
    maskOf(fields),
    fields.uid,
    fields.sequence,
    hashOf(fields.key),
    iso(fields.issuedAt),
    iso(fields.expiresAt),
    hashOf(fields.previousKey),
    iso(fields.previousExpiresAt),
    fields.issueReason ?? null,
    fields.rotateHandled ?? null,
    fields.revokedKeyId ?? null,
    ...rendered,
  ]);
}

// A raw key makes createHmac build a KeyObject on every call, most of an HMAC's cost: keep one per key.
const keyObjects = new WeakMap<Uint8Array, KeyObject>();

function mac(sealKey: Uint8Array, fields: SealedFields): Buffer {
  let keyObject = keyObjects.get(sealKey);
  if (keyObject === undefined) {
    keyObject = createSecretKey(sealKey);
    keyObjects.set(sealKey, keyObject);
  }
  return createHmac('sha256', keyObject).update(message(fields)).digest();
}

export function sealOf(sealKey: Uint8Array, fields: SealedFields): string {
  return `${SEAL_VERSION}.${maskOf(fields)}.${mac(sealKey, fields).toString('base64url')}`;
}

/** True when `seal` is keyrotor's seal over exactly these fields (compared in constant time). */
export function sealMatches(sealKey: Uint8Array, fields: SealedFields, seal: string | undefined): boolean {
  if (sealMaskOf(seal) !== maskOf(fields) || seal === undefined) return false;
  const given = Buffer.from(seal.slice(seal.lastIndexOf('.') + 1), 'base64url');
  const expected = mac(sealKey, fields);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
