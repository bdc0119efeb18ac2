// The ApiKey status after a decision, and the catch-up of a status that lags its Secret.
import type { ApiKey, ApiKeyStatus, HistoryEntry, RetireReason } from '../api/types.ts';
import { READY, setCondition } from './conditions.ts';
import { dueTimes } from './due.ts';
import { withHistory } from './history.ts';
import { type KeyChoice, retiredEntry } from './key-issue.ts';
import { at, type DecideInput, minInterval, ROTATION_DEFERRED } from './plan.ts';
import { Reason } from './reasons.ts';
import type { SecretContents } from './secret.ts';
import type { ResolvedSpec } from './spec.ts';

const RETIRE_REASONS: readonly string[] = ['Expiry', 'Schedule', 'Manual', 'Drift', 'Revoked', 'SpecChange'];

/**
 * A status that lags the Secret (the status write after a rotation was lost in a crash) catches up:
 * the Secret says which key replaced which and why, so the history and count come out as if the
 * status write had happened. Nothing is rotated again.
 */
export function catchUp(
  apiKey: ApiKey,
  choice: KeyChoice,
  contents: SecretContents | undefined,
): { retired: HistoryEntry[]; count: number } {
  const statusKeyId = apiKey.status?.keyId;
  const current = choice.current;
  if (
    choice.replaced !== undefined ||
    current === undefined ||
    statusKeyId === undefined ||
    statusKeyId === current.keyId
  ) {
    return { retired: [], count: 0 };
  }
  const reason = contents?.issueReason;
  if (contents?.previousKeyId !== statusKeyId && !(reason !== undefined && RETIRE_REASONS.includes(reason))) {
    return { retired: [], count: 0 };
  }
  const retireReason = (
    reason !== undefined && RETIRE_REASONS.includes(reason) ? reason : 'Expiry'
  ) as RetireReason;
  return {
    retired: [retiredEntry(statusKeyId, apiKey.status?.issuedAt, current.issuedAt, retireReason)],
    count: 1,
  };
}

export function nextStatus(
  input: DecideInput,
  spec: ResolvedSpec,
  choice: KeyChoice,
  retired: HistoryEntry[],
  extraCount: number,
  keySequence: number,
): ApiKeyStatus {
  const { apiKey, now, config } = input;
  const generation = apiKey.metadata.generation;
  const previousStatus = apiKey.status ?? {};
  const history = withHistory(previousStatus.history, retired);
  const rotationCount =
    (previousStatus.rotationCount ?? 0) +
    (choice.replaced !== undefined && choice.replaced !== 'Revoked' ? 1 : 0) +
    extraCount;
  const common: ApiKeyStatus = {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    secretName: spec.secretName,
    rotationCount,
    keySequence,
    ...(choice.rotateHandled === undefined ? {} : { lastRotateRequest: choice.rotateHandled }),
    ...(history.length > 0 ? { history } : {}),
  };
  // Conditions other than Ready describe a failing rotation: a decision that goes through clears them.
  const readyOnly = previousStatus.conditions?.filter((condition) => condition.type === READY);
  const { current, previous } = choice;
  if (current === undefined) {
    const why = spec.revocationReason ? ` (${spec.revocationReason})` : '';
    const message = `key ${choice.revokedKeyId ?? '(none)'} was revoked${why}; set spec.revoked to false to issue a new key`;
    return {
      ...common,
      conditions: setCondition(
        readyOnly,
        { type: READY, status: 'False', reason: Reason.Revoked, message },
        now,
        generation,
      ),
    };
  }
  const due = dueTimes(spec, current, apiKey.metadata.uid, config.rotationJitterMs ?? 0, minInterval(config));
  const message = `key ${current.keyId} is in Secret ${spec.secretName} and valid until ${at(current.expiresAt)}`;
  const ready = setCondition(
    readyOnly,
    { type: READY, status: 'True', reason: Reason.KeyIssued, message },
    now,
    generation,
  );
  const { deferred } = choice;
  return {
    ...common,
    keyId: current.keyId,
    issuedAt: at(current.issuedAt),
    expiresAt: at(current.expiresAt),
    nextRotationAt: at(deferred?.until ?? due.nextRotationAt),
    ...(previous === undefined ? {} : { previousKeyId: previous.keyId, graceEndsAt: at(previous.expiresAt) }),
    conditions:
      deferred === undefined
        ? ready
        : setCondition(
            // Kept from the status before, so its transition time says when the deferral began.
            [...ready, ...(previousStatus.conditions ?? []).filter((c) => c.type === ROTATION_DEFERRED)],
            {
              type: ROTATION_DEFERRED,
              status: 'True',
              reason: Reason.GracePeriod,
              message: deferred.message,
            },
            now,
            generation,
          ),
  };
}
