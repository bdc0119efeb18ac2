// Plans that change no key: Ready=False for what keyrotor cannot fix by itself (an invalid spec, a
// refusing issuer or namespace, a foreign Secret) and the plan after a refused write.
import type { ApiKey, ApiKeyStatus } from '../api/types.ts';
import { admit } from './admission.ts';
import { findCondition, READY, setCondition, truncateMessage } from './conditions.ts';
import { environmentProblem } from './environment.ts';
import { MOUNT_GUARD } from './mount-guard.ts';
import { type DecideInput, EXPIRING_SOON, NOTHING, type Plan } from './plan.ts';
import type { AuditAction, PlannedEvent } from './planned.ts';
import { Reason } from './reasons.ts';
import { RESTART_TARGETS_READY } from './restart-targets.ts';
import { type ResolvedSpec, resolveSpec, revocationSpec, secretNameOf } from './spec.ts';
import { stableJson } from './stable-json.ts';

/** A failing rotation is reported as ExpiringSoon once less than this share of the lifetime is left. */
const EXPIRING_SOON_SHARE = 0.1;

/** Ready=False for a reason keyrotor cannot fix by itself; the Secret is left exactly as it is. */
export function refuse(
  input: Pick<DecideInput, 'apiKey' | 'now'>,
  reason: string,
  message: string,
  audit: AuditAction,
  requeueAfterMs: number | undefined,
): Plan {
  const { apiKey, now } = input;
  // Never the other controllers' conditions: applied here, they would be this field manager's too.
  const previous = withoutOthersConditions(apiKey.status ?? {});
  const generation = apiKey.metadata.generation;
  const before = findCondition(previous.conditions, READY);
  const status: ApiKeyStatus = {
    ...previous,
    secretName: secretNameOf(apiKey),
    conditions: setCondition(
      previous.conditions,
      { type: READY, status: 'False', reason, message },
      now,
      generation,
    ),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  // Report each refusal once, when it starts or its message changes: no event storm on every resync.
  const isNew =
    before?.reason !== reason || before.message !== truncateMessage(message) || before.status !== 'False';
  return {
    ...NOTHING,
    status,
    statusChanged: stableJson(status) !== stableJson(previous),
    events: isNew ? [{ type: 'Warning', reason, action: 'Reconcile', note: message }] : [],
    audit: isNew
      ? [{ action: audit, reason, message, ...(previous.keyId ? { keyId: previous.keyId } : {}) }]
      : [],
    requeueAfterMs,
  };
}

/**
 * The plan after the API server refused or failed a Secret write. A failed rotation keeps the old key
 * (still valid) and counts the attempt, warning ExpiringSoon once little of the key's life is left;
 * any other refused write is Ready=False, SecretRejected. Either way the caller retries with backoff.
 */
export function recordFailure(apiKey: ApiKey, failed: Plan, now: Date, serverMessage: string): Plan {
  const status = apiKey.status ?? {};
  const attempts = (status.failedAttempts ?? 0) + 1;
  if (failed.replaced === undefined || status.keyId === undefined || status.expiresAt === undefined) {
    const kept = status.keyId ? `; key ${status.keyId} is unchanged` : '';
    const message = `the API server refused Secret ${secretNameOf(apiKey)}: ${serverMessage}${kept}`;
    const refusal = refuse({ apiKey, now }, Reason.SecretRejected, message, 'rejected-secret', undefined);
    return { ...refusal, status: { ...refusal.status, failedAttempts: attempts }, statusChanged: true };
  }
  const expiresAt = new Date(status.expiresAt);
  const lifetime = expiresAt.getTime() - new Date(status.issuedAt ?? status.expiresAt).getTime();
  const nearExpiry = expiresAt.getTime() - now.getTime() < lifetime * EXPIRING_SOON_SHARE;
  const note = `rotation of key ${status.keyId} failed (attempt ${attempts}): ${serverMessage}; retrying with backoff`;
  const events: PlannedEvent[] = [{ type: 'Warning', reason: Reason.RotationFailed, action: 'Rotate', note }];
  let conditions = status.conditions;
  if (nearExpiry) {
    const message = `key ${status.keyId} expires at ${status.expiresAt} and its rotation keeps failing: ${serverMessage}`;
    const wasWarned = findCondition(conditions, EXPIRING_SOON)?.status === 'True';
    conditions = setCondition(
      conditions,
      { type: EXPIRING_SOON, status: 'True', reason: Reason.RotationFailed, message },
      now,
      apiKey.metadata.generation,
    );
    if (!wasWarned)
      events.push({ type: 'Warning', reason: Reason.ExpiringSoon, action: 'Rotate', note: message });
  }
  return {
    ...NOTHING,
    status: { ...status, failedAttempts: attempts, ...(conditions ? { conditions } : {}) },
    statusChanged: true,
    events,
  };
}

/**
 * The status without the conditions other keyrotor controllers apply under their own field managers
 * (MountGuard, RestartTargetsReady): the ApiKey controller's apply leaves them be, so compared with
 * them every reconcile would see a change and write the status again.
 */
export function withoutOthersConditions(status: ApiKeyStatus): ApiKeyStatus {
  if (status.conditions === undefined) return status;
  const others = [MOUNT_GUARD, RESTART_TARGETS_READY];
  return { ...status, conditions: status.conditions.filter((condition) => !others.includes(condition.type)) };
}

/** Ready=False when the key's issuer does not exist or does not permit it; undefined when it may be issued. */
function issuerRefusal(input: DecideInput, spec: ResolvedSpec): Plan | undefined {
  const { apiKey } = input;
  // A revocation needs no one's permission: it must work even when the issuer is gone or refuses.
  if (spec.revoked || apiKey.spec.issuerRef === undefined) return undefined;
  const context = input.issuer ?? { issuer: undefined, namespaceLabels: {} };
  const admission = admit(apiKey, spec, context.issuer, context.namespaceLabels);
  if (admission.permitted) return undefined;
  const keyId = apiKey.status?.keyId;
  const kept = keyId
    ? `; key ${keyId} stays in the Secret, but the issuer's verifier no longer lists it`
    : '';
  return refuse(input, admission.reason, `${admission.message}${kept}`, 'not-permitted', undefined);
}

/**
 * Ready=False when the namespace's environment label forbids this key (reconcile/environment.ts). The
 * key in the Secret is kept, as it is, but no key is issued or rotated, and no verifier lists it (ADR
 * 0003). A revocation is never held back by it.
 */
function environmentRefusal(input: DecideInput, spec: ResolvedSpec): Plan | undefined {
  const { apiKey, config } = input;
  if (spec.revoked) return undefined;
  const labels = input.namespaceLabels ?? input.issuer?.namespaceLabels ?? {};
  const required = config.requireEnvironmentLabel === true;
  const problem = environmentProblem(apiKey.metadata.namespace, labels, spec.environment, required);
  if (problem === undefined) return undefined;
  const keyIdNow = apiKey.status?.keyId;
  const verifier =
    apiKey.spec.issuerRef === undefined ? '' : ", and the issuer's verifier no longer lists it";
  const kept = keyIdNow ? `; key ${keyIdNow} stays in the Secret but is not rotated${verifier}` : '';
  const message = `${problem.message}; until that is fixed no key is issued or rotated${kept}`;
  return refuse(input, Reason.EnvironmentMismatch, message, 'not-permitted', undefined);
}

/** Ready=False before anything is issued: the namespace's environment first, then the issuer. */
export function refusalOf(input: DecideInput, spec: ResolvedSpec): Plan | undefined {
  return environmentRefusal(input, spec) ?? issuerRefusal(input, spec);
}

/**
 * The spec to act on, or the InvalidSpec refusal. Revocation comes before every other check: a spec
 * keyrotor cannot honour (nor an issuer that refuses or is gone) never keeps a revoked key in its Secret.
 */
export function specOrRefusal(input: DecideInput): ResolvedSpec | { refusal: Plan } {
  const { apiKey, now } = input;
  const resolved = resolveSpec(apiKey, now, input.config.allowedReplicatorKeys);
  if (resolved.ok) return resolved.spec;
  if (apiKey.spec.revoked === true) return revocationSpec(apiKey);
  const keyIdNow = apiKey.status?.keyId;
  const kept = keyIdNow ? `; key ${keyIdNow} is unchanged and still valid` : '';
  const message = `the spec is invalid: ${resolved.message}${kept}`;
  return { refusal: refuse(input, Reason.InvalidSpec, message, 'rejected-spec', undefined) };
}
