// decide(): the whole decision for one ApiKey, from the parts in plan.ts, refusals.ts, key-choice.ts,
// secret-plan.ts and next-status.ts. Pure; its table and scenario tests are decide*.test.ts.
import { ANNOTATION_ADOPT } from '../api/names.ts';
import { findCondition, truncateMessage } from './conditions.ts';
import { chooseKey, sequenceAfter } from './key-choice.ts';
import { catchUp, nextStatus } from './next-status.ts';
import { CONFLICT_RECHECK_MS, NOTHING, type DecideInput, type Plan, ROTATION_DEFERRED } from './plan.ts';
import type { PlannedEvent } from './planned.ts';
import { Reason } from './reasons.ts';
import { refusalOf, refuse, specOrRefusal, withoutOthersConditions } from './refusals.ts';
import { observe, ownershipOf, planSecret, toStrip } from './secret-plan.ts';
import { desiredSecret } from './secret.ts';
import { stableJson } from './stable-json.ts';

/**
 * The whole decision for one ApiKey: what its Secret and status should hold, which events and audit
 * lines record the step, and when to look again. Pure: same input, same plan (given the key source).
 */
export function decide(input: DecideInput): Plan {
  const { apiKey, secret, now } = input;
  const previousStatus = apiKey.status ?? {};
  // Deleting: the garbage collector removes the Secret with its owner.
  if (apiKey.metadata.deletionTimestamp !== undefined) return { ...NOTHING, status: previousStatus };

  const spec = specOrRefusal(input);
  if ('refusal' in spec) return spec.refusal;
  const refusal = refusalOf(input, spec);
  if (refusal !== undefined) return refusal;
  const ownership = ownershipOf(secret, apiKey);
  if (ownership === 'foreign') {
    const message =
      `Secret ${spec.secretName} already exists and is not managed by this ApiKey, so keyrotor will not overwrite it. ` +
      `Delete it, set another spec.secretName on a new ApiKey, or annotate the Secret ${ANNOTATION_ADOPT}=true to let keyrotor replace its contents`;
    return refuse(
      input,
      Reason.SecretConflict,
      message,
      'conflict',
      input.config.conflictRecheckMs ?? CONFLICT_RECHECK_MS,
    );
  }

  const observed = observe(input, ownership);
  const contents = observed.trusted;
  const choice = chooseKey(input, spec, ownership, observed);
  const sequence = sequenceAfter(apiKey, contents, choice);
  const manifest = desiredSecret(apiKey, spec, { ...choice, sequence }, input.config.sealKey);
  const secretPlan = planSecret(input, manifest, choice, ownership, toStrip(secret, manifest, observed));
  const recovered = catchUp(apiKey, choice, contents);
  const audit = [...choice.audit, ...secretPlan.audit];
  const deferralEvents: PlannedEvent[] = [];
  const wasDeferred = findCondition(previousStatus.conditions, ROTATION_DEFERRED);
  if (choice.deferred !== undefined && wasDeferred?.message !== truncateMessage(choice.deferred.message)) {
    const note = choice.deferred.message;
    deferralEvents.push({ type: 'Normal', reason: Reason.RotationDeferred, action: 'Rotate', note });
  }
  if (recovered.retired.length > 0 && choice.current) {
    const message = `status caught up with key ${choice.current.keyId} in Secret ${spec.secretName}`;
    audit.push({ action: 'recovered', reason: Reason.KeyIssued, keyId: choice.current.keyId, message });
  }
  const status = nextStatus(
    input,
    spec,
    choice,
    [...choice.retired, ...recovered.retired],
    recovered.count,
    sequence,
  );
  const wakeAt =
    choice.current === undefined
      ? Infinity
      : Math.min(
          new Date(status.nextRotationAt ?? 0).getTime(),
          choice.previous?.expiresAt.getTime() ?? Infinity,
        );
  const replacedHeldKey = choice.replaced !== undefined && choice.replaced !== 'Revoked';
  return {
    secretWrite: secretPlan.write,
    status,
    statusChanged: stableJson(status) !== stableJson(withoutOthersConditions(previousStatus)),
    events: [...choice.events, ...deferralEvents, ...secretPlan.events],
    audit,
    requeueAfterMs: Number.isFinite(wakeAt) ? Math.max(wakeAt - now.getTime(), 1_000) : undefined,
    replaced: choice.replaced,
    restart: replacedHeldKey || choice.replaced === 'Revoked' ? spec.restartTargets : [],
  };
}

// The decision's public face: callers import it from here, whatever module a part lives in.
export {
  CONFLICT_RECHECK_MS,
  DEFAULT_MIN_ROTATION_INTERVAL_MS,
  EXPIRING_SOON,
  ROTATION_DEFERRED,
  type DecideConfig,
  type DecideInput,
  type IssuerContext,
  type Plan,
  type SecretWrite,
} from './plan.ts';
export { recordFailure } from './refusals.ts';
export { rotateRequestOf } from './key-issue.ts';
