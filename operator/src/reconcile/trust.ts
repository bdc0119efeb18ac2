import type { ApiKey } from '../api/types.ts';
import { keyId } from '../keys/format.ts';
import { sealMatches } from './seal.ts';
import { readSecret, sealedFieldsOf, type SecretContents, type SecretLike } from './secret.ts';

/**
 * How far a key Secret can be believed. Anyone with Secret write in the namespace can edit it, so its
 * bookkeeping counts only when keyrotor's seal matches and it is not older than what the ApiKey's
 * status (which only keyrotor writes) last recorded (docs/adr/0002-sealed-key-secrets.md).
 */
export type SecretTrust =
  /** keyrotor wrote exactly this (a matching seal, a sequence at or past the status's). */
  | { readonly kind: 'sealed'; readonly contents: SecretContents }
  /**
   * Written before seals existed: only what the status confirms is kept (the key whose id the status
   * names, with the status's times); the next write seals it.
   */
  | { readonly kind: 'unsealed'; readonly contents: SecretContents }
  /** Not keyrotor's: a seal that does not match, or an older state replayed. Nothing in it is trusted. */
  | { readonly kind: 'tampered'; readonly why: string; readonly contents: SecretContents };

const parseDate = (text: string | undefined) => (text === undefined ? undefined : new Date(text));

/** An unsealed Secret, believed only as far as the status agrees with it. */
function confirmedByStatus(apiKey: ApiKey, contents: SecretContents): SecretContents | undefined {
  const status = apiKey.status ?? {};
  if (contents.key === undefined) {
    // A revoked Secret holds no key; nothing in it can make a key valid.
    return { ...contents, sequence: status.keySequence ?? 0 };
  }
  if (status.keyId === undefined || keyId(contents.key) !== status.keyId || status.expiresAt === undefined)
    return undefined;
  const previousConfirmed =
    contents.previousKey !== undefined &&
    status.previousKeyId !== undefined &&
    status.graceEndsAt !== undefined &&
    keyId(contents.previousKey) === status.previousKeyId;
  return {
    ...contents,
    keyId: status.keyId,
    issuedAt: parseDate(status.issuedAt),
    expiresAt: parseDate(status.expiresAt),
    previousKey: previousConfirmed ? contents.previousKey : undefined,
    previousKeyId: previousConfirmed ? status.previousKeyId : undefined,
    previousExpiresAt: previousConfirmed ? parseDate(status.graceEndsAt) : undefined,
    rotateHandled: status.lastRotateRequest,
    sequence: status.keySequence ?? 0,
  };
}

/**
 * Seal checks of Secrets as the informer holds them: an object there does not change (an update is a
 * new object), so a verifier rebuild over thousands of consumers checks each seal once, not each time.
 */
const sealedChecks = new WeakMap<
  SecretLike,
  { readonly sealKey: Uint8Array; readonly uid: string; readonly contents: SecretContents }
>();

export function trustSecret(apiKey: ApiKey, secret: SecretLike, sealKey: Uint8Array): SecretTrust {
  const recorded = apiKey.status?.keySequence ?? 0;
  const checked = sealedChecks.get(secret);
  if (checked?.sealKey === sealKey && checked.uid === apiKey.metadata.uid) {
    if ((checked.contents.sequence ?? 0) >= recorded) return { kind: 'sealed', contents: checked.contents };
  }
  const trust = checkSecret(apiKey, secret, sealKey, recorded);
  if (trust.kind === 'sealed')
    sealedChecks.set(secret, { sealKey, uid: apiKey.metadata.uid, contents: trust.contents });
  return trust;
}

function checkSecret(apiKey: ApiKey, secret: SecretLike, sealKey: Uint8Array, recorded: number): SecretTrust {
  const contents = readSecret(secret);
  if (contents.seal === undefined && contents.sequence === undefined) {
    const confirmed = confirmedByStatus(apiKey, contents);
    return confirmed === undefined
      ? { kind: 'tampered', why: 'its key is not the one keyrotor recorded', contents }
      : { kind: 'unsealed', contents: confirmed };
  }
  if (!sealMatches(sealKey, sealedFieldsOf(apiKey.metadata.uid, contents), contents.seal)) {
    return { kind: 'tampered', why: "its keys or their times do not match keyrotor's seal", contents };
  }
  if ((contents.sequence ?? 0) < recorded) {
    return {
      kind: 'tampered',
      why: `it holds key sequence ${contents.sequence ?? 0}, older than ${recorded}: an earlier state was put back`,
      contents,
    };
  }
  return { kind: 'sealed', contents };
}
