// Which key the Secret holds after this decision: kept, rotated (and why), deferred for a grace period,
// or one of key-issue.ts's choices.
import type { ApiKey, RetireReason } from '../api/types.ts';
import { keyId, parseKey } from '../keys/format.ts';
import { dueTimes } from './due.ts';
import {
  graceFor,
  issueFresh,
  keptPrevious,
  type KeyChoice,
  newKey,
  pendingRotateRequest,
  replaceUntrusted,
  retiredEntry,
  revoke,
  rotateRequestOf,
  trustedKey,
} from './key-issue.ts';
import { addMs, at, type DecideInput, minInterval } from './plan.ts';
import type { PlannedAudit, PlannedEvent } from './planned.ts';
import { Reason } from './reasons.ts';
import type { Observed, Ownership } from './secret-plan.ts';
import type { CurrentKey, PreviousKey, SecretContents } from './secret.ts';
import type { ResolvedSpec } from './spec.ts';

/** Why an existing, trusted key must be replaced now, if it must. */
function replacementReason(
  input: DecideInput,
  spec: ResolvedSpec,
  existing: CurrentKey,
  handled: string | undefined,
): RetireReason | undefined {
  const { apiKey, now, config } = input;
  const parsed = parseKey(existing.key);
  if (
    parsed.ok &&
    (parsed.key.prefix !== spec.keyPrefix ||
      parsed.key.environment !== spec.environment ||
      parsed.key.bits !== spec.keyBits)
  ) {
    return 'SpecChange';
  }
  if (pendingRotateRequest(apiKey, handled) !== undefined) return 'Manual';
  const due = dueTimes(
    spec,
    existing,
    apiKey.metadata.uid,
    config.rotationJitterMs ?? 0,
    minInterval(config),
  );
  if (now >= due.expiryDueAt) return 'Expiry';
  if (due.scheduleDueAt !== undefined && now >= due.scheduleDueAt) return 'Schedule';
  return undefined;
}

const ROTATION_NOTES: Record<RetireReason, string> = {
  Expiry: 'it was due before its expiry',
  Schedule: 'the rotation schedule fired',
  Manual: 'the keyrotor.dev/rotate annotation asked for it',
  SpecChange: 'the spec changed the key format (prefix, environment or bits)',
  Drift: 'the Secret was changed outside keyrotor',
  Revoked: 'it was revoked',
};

/**
 * One previous slot: rotating while a previous key is in its grace period would drop a key whose grace
 * was promised, so the rotation waits for it to end (a revocation never waits, nor does a key that has
 * expired, nor a change of environment).
 */
function deferral(
  reason: RetireReason,
  existing: CurrentKey,
  kept: PreviousKey | undefined,
  now: Date,
): KeyChoice['deferred'] {
  if (kept === undefined || now >= existing.expiresAt) return undefined;
  // Never past the current key's own expiry: then it rotates, grace or not (an expired key is no use).
  const until = new Date(Math.min(kept.expiresAt.getTime(), existing.expiresAt.getTime()));
  const message = `rotation (${reason}) of key ${existing.keyId} is deferred until ${at(until)}, when the grace period of previous key ${kept.keyId} ends`;
  return { until, message };
}

/** The Normal event and audit line of a previous key whose grace period has ended. */
function graceEnded(contents: SecretContents, kept: PreviousKey | undefined, where: string) {
  const events: PlannedEvent[] = [];
  const audit: PlannedAudit[] = [];
  const retired = contents.previousKeyId;
  if (retired !== undefined && kept === undefined) {
    const note = `previous key ${retired} retired from ${where}: its grace period ended`;
    events.push({ type: 'Normal', reason: Reason.PreviousKeyRetired, action: 'Retire', note });
    audit.push({ action: 'retired', reason: Reason.PreviousKeyRetired, keyId: retired, message: note });
  }
  return { events, audit };
}

function chooseForExisting(input: DecideInput, spec: ResolvedSpec, contents: SecretContents): KeyChoice {
  const { apiKey, now, config } = input;
  const where = `Secret ${spec.secretName}`;
  const handled = contents.rotateHandled ?? apiKey.status?.lastRotateRequest;
  const key = trustedKey(contents);
  if (key === undefined) return replaceUntrusted(input, spec, handled);

  const issuedAt = contents.issuedAt ?? (apiKey.status?.issuedAt ? new Date(apiKey.status.issuedAt) : now);
  const existing: CurrentKey = {
    key,
    keyId: keyId(key),
    issuedAt,
    expiresAt: addMs(issuedAt, spec.expiresAfterMs),
  };
  const kept = keptPrevious(contents, now);
  const { events, audit } = graceEnded(contents, kept, where);
  const reason = replacementReason(input, spec, existing, handled);
  // A key of another environment must not stay valid beside the new one.
  const parsed = parseKey(key);
  const sameEnvironment = parsed.ok && parsed.key.environment === spec.environment;
  const deferred = reason && sameEnvironment ? deferral(reason, existing, kept, now) : undefined;
  if (reason === undefined || deferred !== undefined) {
    return {
      current: existing,
      previous: kept,
      issueReason: contents.issueReason ?? 'Issue',
      rotateHandled: handled,
      revokedKeyId: undefined,
      replaced: undefined,
      retired: [],
      events,
      audit,
      ...(deferred ? { deferred } : {}),
    };
  }
  const current = newKey(spec, now, config);
  const previous = sameEnvironment ? graceFor(existing, spec, now) : undefined;
  const grace = previous ? `; key ${existing.keyId} stays valid until ${at(previous.expiresAt)}` : '';
  if (now >= existing.expiresAt) {
    const note = `key ${existing.keyId} expired at ${at(existing.expiresAt)} before it was rotated`;
    events.push({ type: 'Warning', reason: Reason.Expired, action: 'Rotate', note });
  }
  const note = `rotated key ${existing.keyId} to ${current.keyId} because ${ROTATION_NOTES[reason]}${grace}`;
  events.push({
    type: 'Normal',
    reason: reason === 'SpecChange' ? Reason.Reissued : Reason.Rotated,
    action: 'Rotate',
    note,
  });
  audit.push({
    action: reason === 'SpecChange' ? 'reissued' : 'rotated',
    reason,
    keyId: current.keyId,
    previousKeyId: existing.keyId,
    message: note,
  });
  return {
    current,
    previous,
    issueReason: reason,
    rotateHandled: rotateRequestOf(apiKey) ?? handled,
    revokedKeyId: undefined,
    replaced: reason,
    retired: [retiredEntry(existing.keyId, at(existing.issuedAt), now, reason)],
    events,
    audit,
  };
}

export function chooseKey(
  input: DecideInput,
  spec: ResolvedSpec,
  ownership: Ownership,
  observed: Observed,
): KeyChoice {
  const { trusted, tampered } = observed;
  if (spec.revoked) {
    // Whatever the Secret says, it ends up holding no key; the ids recorded are keyrotor's own.
    return revoke(
      input,
      spec,
      trusted ??
        (tampered && { ...tampered.raw, keyId: input.apiKey.status?.keyId, revokedKeyId: undefined }),
    );
  }
  if (tampered !== undefined) {
    return replaceUntrusted(input, spec, input.apiKey.status?.lastRotateRequest, tampered.why);
  }
  if (trusted === undefined || (trusted.key === undefined && trusted.revokedKeyId !== undefined)) {
    return issueFresh(input, spec, trusted, ownership === 'adoptable');
  }
  return chooseForExisting(input, spec, trusted);
}

/** The key sequence after this choice: one more than any seen when the key changes. */
export function sequenceAfter(
  apiKey: ApiKey,
  trusted: SecretContents | undefined,
  choice: KeyChoice,
): number {
  const base = Math.max(trusted?.sequence ?? 0, apiKey.status?.keySequence ?? 0);
  const before = trusted?.key === undefined ? undefined : keyId(trusted.key);
  const unchanged =
    trusted !== undefined && before === choice.current?.keyId && trusted.revokedKeyId === choice.revokedKeyId;
  return unchanged ? base : base + 1;
}
