import type { Condition, ConditionStatus } from '../api/types.ts';

export const READY = 'Ready';

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
