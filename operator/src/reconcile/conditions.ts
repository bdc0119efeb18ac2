import type { Condition, ConditionStatus } from '../api/types.ts';

export const READY = 'Ready';

/**
 * The longest condition message keyrotor writes: well inside the CRDs' maxLength (2048 for
 * status.conditions[].message of ApiKey and ApiKeyIssuer), so a long message (a list of broken rules,
 * a server's answer) can never make the status write itself fail.
 */
export const MAX_CONDITION_MESSAGE = 1024;

/** `message` cut to at most `max` characters (UTF-16 code units, so never more code points), ending in "…" when cut. */
export function truncateMessage(message: string, max: number = MAX_CONDITION_MESSAGE): string {
  if (message.length <= max) return message;
  let cut = message.slice(0, max - 1);
  // Do not leave half of a surrogate pair at the end.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

export interface ConditionUpdate {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
}

/**
 * Returns the conditions with `update` in place of the one of the same type. lastTransitionTime moves
 * only when the status changes, as Kubernetes' API conventions ask.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: Date,
  observedGeneration: number | undefined,
): Condition[] {
  const existing = conditions?.find((condition) => condition.type === update.type);
  const next: Condition = {
    ...update,
    message: truncateMessage(update.message),
    lastTransitionTime:
      existing !== undefined && existing.status === update.status
        ? existing.lastTransitionTime
        : now.toISOString(),
    ...(observedGeneration === undefined ? {} : { observedGeneration }),
  };
  return [...(conditions ?? []).filter((condition) => condition.type !== update.type), next];
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((condition) => condition.type === type);
}
