// The new key a decision puts in place: issued fresh, revoked, or replaced because the Secret's key can
// no longer be trusted; and the pieces a rotation shares with them (grace, history, rotate requests).
import { ANNOTATION_ADOPT, ANNOTATION_ROTATE } from '../api/names.ts';
import type { ApiKey, HistoryEntry, RetireReason } from '../api/types.ts';
import { keyHash, keyId, parseKey } from '../keys/format.ts';
import { addMs, at, type DecideConfig, type DecideInput } from './plan.ts';
import type { PlannedAudit, PlannedEvent } from './planned.ts';
import { Reason } from './reasons.ts';
import type { CurrentKey, PreviousKey, SecretContents, SecretState } from './secret.ts';
import type { ResolvedSpec } from './spec.ts';

/** Rotate values longer than this are recorded by their SHA-256: status and annotations stay bounded. */
const MAX_ROTATE_REQUEST_CHARS = 128;

/** What a decision does to the key: the state of the Secret after it, and how it got there. */
export interface KeyChoice extends Omit<SecretState, 'sequence'> {
  /** Set when a key that workloads may hold was replaced (or revoked): why. */
  readonly replaced: RetireReason | undefined;
  readonly retired: readonly HistoryEntry[];
  readonly events: PlannedEvent[];
  readonly audit: PlannedAudit[];
  /** A due rotation waits until then, for the previous key's grace period: why and until when. */
  readonly deferred?: { readonly until: Date; readonly message: string };
}

export function newKey(spec: ResolvedSpec, now: Date, config: DecideConfig): CurrentKey {
  const key = config.generateKey({
    prefix: spec.keyPrefix,
    environment: spec.environment,
    bits: spec.keyBits,
  });
  return { key, keyId: keyId(key), issuedAt: now, expiresAt: addMs(now, spec.expiresAfterMs) };
}

/** The key a Secret holds is trustworthy: well-formed, with a checksum and fingerprint that match. */
export function trustedKey(contents: SecretContents): string | undefined {
  const { key } = contents;
  return key !== undefined && parseKey(key).ok && keyId(key) === contents.keyId ? key : undefined;
}

/** The previous key a Secret holds, while its grace period lasts. */
export function keptPrevious(contents: SecretContents, now: Date): PreviousKey | undefined {
  const { previousKey, previousKeyId, previousExpiresAt } = contents;
  if (previousKey === undefined || previousKeyId === undefined || previousExpiresAt === undefined)
    return undefined;
  if (previousExpiresAt <= now || keyId(previousKey) !== previousKeyId) return undefined;
  return { key: previousKey, keyId: previousKeyId, expiresAt: previousExpiresAt };
}

export function graceFor(old: CurrentKey, spec: ResolvedSpec, now: Date): PreviousKey | undefined {
  if (spec.gracePeriodMs <= 0 || old.expiresAt <= now) return undefined;
  const end = Math.min(now.getTime() + spec.gracePeriodMs, old.expiresAt.getTime());
  return { key: old.key, keyId: old.keyId, expiresAt: new Date(end) };
}

export const retiredEntry = (
  keyIdValue: string,
  issuedAt: string | undefined,
  now: Date,
  reason: RetireReason,
): HistoryEntry => ({
  keyId: keyIdValue,
  ...(issuedAt === undefined ? {} : { issuedAt }),
  retiredAt: at(now),
  reason,
});

/**
 * The rotate annotation's value as keyrotor records it: as it is, or by its SHA-256 when it is long
 * (the tenant writes it; the status and the Secret annotation must stay within their limits).
 */
export function rotateRequestOf(apiKey: ApiKey): string | undefined {
  const requested = apiKey.metadata.annotations?.[ANNOTATION_ROTATE];
  if (requested === undefined || requested.length <= MAX_ROTATE_REQUEST_CHARS) return requested;
  return `sha256:${keyHash(requested)}`;
}

/** The rotate annotation's value when it asks for a rotation not yet handled. */
export function pendingRotateRequest(apiKey: ApiKey, handled: string | undefined): string | undefined {
  const requested = rotateRequestOf(apiKey);
  return requested !== undefined && requested !== handled ? requested : undefined;
}

/** No key is in the Secret (it is missing, adopted, or revoked and now reinstated): issue one. */
export function issueFresh(
  input: DecideInput,
  spec: ResolvedSpec,
  contents: SecretContents | undefined,
  adopting: boolean,
): KeyChoice {
  const { apiKey, now, config } = input;
  const current = newKey(spec, now, config);
  const where = `Secret ${spec.secretName}`;
  // A rotate request made before the key existed asks for nothing: the key is new anyway.
  const rotateHandled = rotateRequestOf(apiKey) ?? contents?.rotateHandled;
  const base = { current, previous: undefined, rotateHandled, revokedKeyId: undefined, retired: [] };
  const lostKeyId = apiKey.status?.keyId;
  if (contents?.revokedKeyId !== undefined) {
    const note = `issued new key ${current.keyId} into ${where} after key ${contents.revokedKeyId} was revoked`;
    return {
      ...base,
      issueReason: 'Reinstated',
      replaced: undefined,
      events: [{ type: 'Normal', reason: Reason.Issued, action: 'Issue', note }],
      audit: [{ action: 'issued', reason: Reason.Issued, keyId: current.keyId, message: note }],
    };
  }
  if (adopting) {
    const note = `adopted existing ${where} (annotated ${ANNOTATION_ADOPT}=true) and issued key ${current.keyId}`;
    return {
      ...base,
      issueReason: 'Adopted',
      replaced: undefined,
      events: [{ type: 'Normal', reason: Reason.SecretAdopted, action: 'Issue', note }],
      audit: [{ action: 'adopted', reason: Reason.SecretAdopted, keyId: current.keyId, message: note }],
    };
  }
  if (lostKeyId !== undefined) {
    const note = `${where} was deleted; issued new key ${current.keyId} (key ${lostKeyId} is gone)`;
    return {
      ...base,
      issueReason: 'Drift',
      replaced: 'Drift',
      retired: [retiredEntry(lostKeyId, apiKey.status?.issuedAt, now, 'Drift')],
      events: [{ type: 'Warning', reason: Reason.SecretRecreated, action: 'Issue', note }],
      audit: [
        {
          action: 'recreated',
          reason: Reason.SecretRecreated,
          keyId: current.keyId,
          previousKeyId: lostKeyId,
          message: note,
        },
      ],
    };
  }
  const note = `issued key ${current.keyId} into ${where}, valid until ${at(current.expiresAt)}`;
  return {
    ...base,
    issueReason: 'Issue',
    replaced: undefined,
    events: [{ type: 'Normal', reason: Reason.Issued, action: 'Issue', note }],
    audit: [{ action: 'issued', reason: Reason.Issued, keyId: current.keyId, message: note }],
  };
}

/** spec.revoked: the Secret keeps no key at all, at once, grace period or not. */
export function revoke(
  input: DecideInput,
  spec: ResolvedSpec,
  contents: SecretContents | undefined,
): KeyChoice {
  const { apiKey, now } = input;
  const rotateHandled = contents?.rotateHandled;
  const revokedKeyId = contents?.revokedKeyId ?? contents?.keyId ?? apiKey.status?.keyId;
  const base = {
    current: undefined,
    previous: undefined,
    issueReason: 'Revoked',
    rotateHandled,
    revokedKeyId,
  };
  if (contents === undefined || contents.key === undefined || revokedKeyId === undefined) {
    return { ...base, replaced: undefined, retired: [], events: [], audit: [] };
  }
  const why = spec.revocationReason ? `: ${spec.revocationReason}` : '';
  const grace = contents.previousKeyId ? ` and previous key ${contents.previousKeyId}` : '';
  const note = `revoked key ${revokedKeyId}${grace}${why}; Secret ${spec.secretName} holds no key until revoked is set to false`;
  return {
    ...base,
    replaced: 'Revoked',
    retired: [retiredEntry(revokedKeyId, contents.issuedAt && at(contents.issuedAt), now, 'Revoked')],
    events: [{ type: 'Warning', reason: Reason.Revoked, action: 'Revoke', note }],
    audit: [{ action: 'revoked', reason: Reason.Revoked, keyId: revokedKeyId, message: note }],
  };
}

/** Key material edited outside keyrotor is no longer trusted: a fresh key, no grace for the old one. */
export function replaceUntrusted(
  input: DecideInput,
  spec: ResolvedSpec,
  handled: string | undefined,
  why = 'its key material was changed outside keyrotor',
): KeyChoice {
  const { apiKey, now, config } = input;
  const where = `Secret ${spec.secretName}`;
  const current = newKey(spec, now, config);
  // The id keyrotor recorded, never one the Secret claims: an edited Secret may name any id.
  const lost = apiKey.status?.keyId;
  const note = `${where} is no longer trusted (${why}); issued new key ${current.keyId}, no grace period for any key it held`;
  return {
    current,
    previous: undefined,
    issueReason: 'Drift',
    rotateHandled: rotateRequestOf(apiKey) ?? handled,
    revokedKeyId: undefined,
    replaced: 'Drift',
    retired: lost === undefined ? [] : [retiredEntry(lost, apiKey.status?.issuedAt, now, 'Drift')],
    events: [{ type: 'Warning', reason: Reason.SecretTampered, action: 'Issue', note }],
    audit: [
      {
        action: 'replaced-tampered',
        reason: Reason.SecretTampered,
        keyId: current.keyId,
        ...(lost ? { previousKeyId: lost } : {}),
        message: note,
      },
    ],
  };
}
