import type { ApiKey } from '../api/types.ts';
import { keyId } from '../keys/format.ts';
import {
  ANNOTATION_ISSUED_AT,
  ANNOTATION_RENDERED_DATA,
  ANNOTATION_REVOKED_KEY_ID,
  ANNOTATION_ROTATE_HANDLED,
  DATA_API_KEY,
  DATA_EXPIRES_AT,
  DATA_KEY_ID,
  DATA_PREVIOUS_API_KEY,
  DATA_PREVIOUS_EXPIRES_AT,
  DATA_PREVIOUS_KEY_ID,
} from '../api/names.ts';
import { sealMaskOf, sealMatches, type SealMask } from './seal.ts';
import { readSecret, sealedFieldsOf, type SecretContents, type SecretLike } from './secret.ts';

/**
 * How far a key Secret can be believed. Anyone with Secret write in the namespace can edit it, so its
 * bookkeeping counts only when keyrotor's seal matches and it is not older than what the ApiKey's
 * status (which only keyrotor writes) last recorded (docs/adr/0002-sealed-key-secrets.md).
 */
export type SecretTrust =
  /**
   * keyrotor wrote this (a matching seal, a sequence at or past the status's). `ignored` names the
   * parts someone else added that the seal says keyrotor did not write: they count for nothing, and
   * the next write removes them.
   */
  | { readonly kind: 'sealed'; readonly contents: SecretContents; readonly ignored: readonly string[] }
  /**
   * Written before seals existed: only what the status confirms is kept (the key whose id the status
   * names, with the status's times); the next write seals it.
   */
  | { readonly kind: 'unsealed'; readonly contents: SecretContents }
  /**
   * Not keyrotor's: a seal that does not match or is missing, or (`replayed`) a sealed state older
   * than the status, put back. Nothing in it is trusted.
   */
  | {
      readonly kind: 'tampered';
      readonly why: string;
      readonly replayed: boolean;
      readonly contents: SecretContents;
    };

const parseDate = (text: string | undefined) => (text === undefined ? undefined : new Date(text));

const NOTHING_KEPT = {
  key: undefined,
  keyId: undefined,
  issuedAt: undefined,
  expiresAt: undefined,
  previousKey: undefined,
  previousKeyId: undefined,
  previousExpiresAt: undefined,
  renderedNames: undefined,
  renderedDigest: undefined,
} as const;

/** An unsealed Secret, believed only as far as the status agrees with it; nothing else it says. */
function confirmedByStatus(apiKey: ApiKey, contents: SecretContents): SecretContents | undefined {
  const status = apiKey.status ?? {};
  const bookkeeping = {
    issueReason: undefined,
    revokedKeyId: undefined,
    rotateHandled: status.lastRotateRequest,
    sequence: status.keySequence ?? 0,
    seal: undefined,
  };
  if (contents.key === undefined) {
    // A Secret without a key is believed only if the status says its key was revoked.
    const revoked = status.conditions?.some((c) => c.type === 'Ready' && c.reason === 'Revoked');
    return revoked
      ? { ...NOTHING_KEPT, ...bookkeeping, revokedKeyId: status.history?.[0]?.keyId }
      : undefined;
  }
  if (status.keyId === undefined || keyId(contents.key) !== status.keyId || status.expiresAt === undefined)
    return undefined;
  const previousConfirmed =
    contents.previousKey !== undefined &&
    status.previousKeyId !== undefined &&
    status.graceEndsAt !== undefined &&
    keyId(contents.previousKey) === status.previousKeyId;
  return {
    ...NOTHING_KEPT,
    ...bookkeeping,
    key: contents.key,
    keyId: status.keyId,
    issuedAt: parseDate(status.issuedAt),
    expiresAt: parseDate(status.expiresAt),
    ...(previousConfirmed
      ? {
          previousKey: contents.previousKey,
          previousKeyId: status.previousKeyId,
          previousExpiresAt: parseDate(status.graceEndsAt),
        }
      : {}),
  };
}

/** What a Secret says, restricted to the parts `mask` says keyrotor wrote; and the parts left out. */
function masked(secret: SecretLike, contents: SecretContents, mask: SealMask) {
  const data = secret.data ?? {};
  const annotations = secret.metadata?.annotations ?? {};
  const ignored: string[] = [];
  const drop = (part: string, dataKeys: readonly string[], annotationKeys: readonly string[]) => {
    if (mask.includes(part)) return;
    ignored.push(...dataKeys.filter((key) => key in data).map((key) => `data.${key}`));
    ignored.push(...annotationKeys.filter((key) => key in annotations).map((key) => `annotations.${key}`));
  };
  drop('c', [DATA_API_KEY, DATA_KEY_ID, DATA_EXPIRES_AT], [ANNOTATION_ISSUED_AT]);
  drop('p', [DATA_PREVIOUS_API_KEY, DATA_PREVIOUS_KEY_ID, DATA_PREVIOUS_EXPIRES_AT], []);
  drop('r', [], [ANNOTATION_ROTATE_HANDLED]);
  drop('v', [], [ANNOTATION_REVOKED_KEY_ID]);
  // A rendered-data record keyrotor did not seal goes; the data parts it names are not keyrotor's.
  drop('d', [], [ANNOTATION_RENDERED_DATA]);
  const kept: SecretContents = {
    ...contents,
    ...(mask.includes('c')
      ? {}
      : { key: undefined, keyId: undefined, issuedAt: undefined, expiresAt: undefined }),
    ...(mask.includes('p')
      ? {}
      : { previousKey: undefined, previousKeyId: undefined, previousExpiresAt: undefined }),
    ...(mask.includes('r') ? {} : { rotateHandled: undefined }),
    ...(mask.includes('v') ? {} : { revokedKeyId: undefined }),
    ...(mask.includes('d') ? {} : { renderedNames: undefined, renderedDigest: undefined }),
  };
  return { kept, ignored };
}

/**
 * Seal checks of Secrets as the informer holds them: an object there does not change (an update is a
 * new object), so a verifier rebuild over thousands of consumers checks each seal once, not each time.
 */
const sealedChecks = new WeakMap<
  SecretLike,
  {
    readonly sealKey: Uint8Array;
    readonly uid: string;
    readonly contents: SecretContents;
    readonly ignored: readonly string[];
  }
>();

export function trustSecret(apiKey: ApiKey, secret: SecretLike, sealKey: Uint8Array): SecretTrust {
  const recorded = apiKey.status?.keySequence ?? 0;
  const checked = sealedChecks.get(secret);
  if (checked?.sealKey === sealKey && checked.uid === apiKey.metadata.uid) {
    if ((checked.contents.sequence ?? 0) >= recorded)
      return { kind: 'sealed', contents: checked.contents, ignored: checked.ignored };
  }
  const trust = checkSecret(apiKey, secret, sealKey, recorded);
  if (trust.kind === 'sealed') {
    const { contents, ignored } = trust;
    sealedChecks.set(secret, { sealKey, uid: apiKey.metadata.uid, contents, ignored });
  }
  return trust;
}

function checkSecret(apiKey: ApiKey, secret: SecretLike, sealKey: Uint8Array, recorded: number): SecretTrust {
  const contents = readSecret(secret);
  if (contents.seal === undefined && contents.sequence === undefined) {
    const confirmed = confirmedByStatus(apiKey, contents);
    return confirmed === undefined
      ? { kind: 'tampered', why: 'its key is not the one keyrotor recorded', replayed: false, contents }
      : { kind: 'unsealed', contents: confirmed };
  }
  const mask = sealMaskOf(contents.seal);
  const { kept, ignored } = masked(secret, contents, mask ?? '');
  if (mask === undefined || !sealMatches(sealKey, sealedFieldsOf(apiKey.metadata.uid, kept), contents.seal)) {
    const why = "its keys or their times do not match keyrotor's seal";
    return { kind: 'tampered', why, replayed: false, contents };
  }
  if ((kept.sequence ?? 0) < recorded) {
    return {
      kind: 'tampered',
      why: `it holds key sequence ${kept.sequence ?? 0}, older than ${recorded}: an earlier state was put back`,
      replayed: true,
      contents,
    };
  }
  return { kind: 'sealed', contents: kept, ignored };
}

/**
 * True when a Secret claims a key sequence older than the status records: a replay, or a Secret cache
 * that lags the ApiKey's. The controller reads it again from the API server before calling it a replay.
 */
export function lagsStatus(apiKey: ApiKey, secret: SecretLike): boolean {
  const sequence = readSecret(secret).sequence;
  return sequence !== undefined && sequence < (apiKey.status?.keySequence ?? 0);
}
