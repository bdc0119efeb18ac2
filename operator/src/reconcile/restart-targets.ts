// Restarts, the pure part: which of an ApiKey's rolloutRestartTargets are missing (the condition
// RestartTargetsReady), and which reload-annotated workloads use a key Secret that got a new key.
import { ANNOTATION_RELOAD, ROLLOUT_GROUP, ROLLOUT_PLURAL } from '../api/names.ts';
import { truncateMessage, type ConditionUpdate } from './conditions.ts';
import { secretsUsedBy, type PodLike } from './mount-guard.ts';
import { Reason } from './reasons.ts';
import type { RestartKind, RestartTarget } from './spec.ts';

/** The condition the workloads controller keeps on ApiKeys that name rolloutRestartTargets. */
export const RESTART_TARGETS_READY = 'RestartTargetsReady';

/**
 * What keyrotor keeps of a workload (its informers' transform): enough to know it exists, whether it
 * asks for reloads, and, only if it does, the names of the Secrets its pod template uses. A namespace
 * of thousands of workloads costs a few hundred bytes each, whatever their pod templates hold.
 */
export interface WorkloadView {
  readonly metadata: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  /** Sorted, without repeats; empty unless the workload is annotated keyrotor.dev/reload: "true". */
  readonly secretNames?: readonly string[];
}

/** A workload as the API server serves it (the apps kinds and Rollout share this shape). */
export interface WorkloadLike {
  metadata?: WorkloadView['metadata'];
  spec?: { template?: PodLike };
}

/** Only "true" asks: a typo or "false" restarts nothing. */
export function asksForReload(annotations: Readonly<Record<string, string>> | undefined): boolean {
  return annotations?.[ANNOTATION_RELOAD] === 'true';
}

/**
 * The cached view of a workload. Never throws: the client's watch drops an event whose handler throws.
 * A Rollout that takes its pod template from a Deployment (spec.workloadRef) has none of its own here,
 * so it uses no Secret: the Deployment is what to annotate.
 */
export function workloadView<T extends WorkloadLike>(workload: T): T {
  const metadata = workload.metadata ?? {};
  const reload = asksForReload(metadata.annotations);
  const view: WorkloadView = {
    metadata: {
      ...(metadata.name === undefined ? {} : { name: metadata.name }),
      ...(metadata.namespace === undefined ? {} : { namespace: metadata.namespace }),
      ...(metadata.uid === undefined ? {} : { uid: metadata.uid }),
      ...(metadata.resourceVersion === undefined ? {} : { resourceVersion: metadata.resourceVersion }),
      ...(reload ? { annotations: { [ANNOTATION_RELOAD]: 'true' } } : {}),
    },
    ...(reload ? { secretNames: [...secretsUsedBy(workload.spec?.template?.spec)].sort() } : {}),
  };
  // The view has a subset of T's fields; callers read only those (WorkloadView).
  return view as T;
}

/** Whether keyrotor can see workloads of a kind: the apps kinds always; Rollout only with its CRD. */
export type KindAvailability = 'available' | 'not-installed' | 'forbidden';

/** A named target that does not exist, and why it cannot. */
export interface MissingTarget extends RestartTarget {
  readonly why: KindAvailability;
}

/** The targets that are missing, in the order the spec names them. */
export function missingTargets(
  targets: readonly RestartTarget[],
  availability: (kind: RestartKind) => KindAvailability,
  exists: (target: RestartTarget) => boolean,
): MissingTarget[] {
  const missing: MissingTarget[] = [];
  for (const target of targets) {
    const why = availability(target.kind);
    if (why !== 'available' || !exists(target)) missing.push({ ...target, why });
  }
  return missing;
}

/** The most targets a message names; the rest are counted. */
const MAX_NAMED = 10;

/** The resource keyrotor lists for a kind, as RBAC names it. */
const RESOURCE_OF: Record<RestartKind, string> = {
  Deployment: 'deployments.apps',
  StatefulSet: 'statefulsets.apps',
  DaemonSet: 'daemonsets.apps',
  Rollout: `${ROLLOUT_PLURAL}.${ROLLOUT_GROUP}`,
};

function describeMissing(target: MissingTarget): string {
  const what = `${target.kind} ${target.name}`;
  if (target.why === 'not-installed')
    return `${what} (the CRD ${RESOURCE_OF[target.kind]} is not installed: Argo Rollouts is not there)`;
  if (target.why === 'forbidden')
    return `${what} (keyrotor may not list ${RESOURCE_OF[target.kind]}: the chart grants it with features.workloadRestarts=true)`;
  return what;
}

/** "Deployment a, Rollout b (...) and 3 more". */
export function describeMissingTargets(missing: readonly MissingTarget[]): string {
  const named = missing.slice(0, MAX_NAMED).map(describeMissing);
  const more = missing.length - named.length;
  return `${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

/** The RestartTargetsReady condition of an ApiKey whose targets have these missing. */
export function restartTargetsCondition(
  targets: readonly RestartTarget[],
  missing: readonly MissingTarget[],
): ConditionUpdate {
  if (missing.length === 0) {
    return {
      type: RESTART_TARGETS_READY,
      status: 'True',
      reason: Reason.RestartTargetsFound,
      message: `all ${targets.length} rolloutRestartTargets exist and are restarted when the key rotates`,
    };
  }
  return {
    type: RESTART_TARGETS_READY,
    status: 'False',
    reason: Reason.RestartTargetMissing,
    // Cut here as setCondition would cut it, so the condition written compares equal to the next one.
    message: truncateMessage(
      `rolloutRestartTargets names ${describeMissingTargets(missing)}, not found in the ApiKey's namespace: ` +
        'nothing is restarted for them when the key rotates. Create them, or remove them from the spec.',
    ),
  };
}

/** Whether a condition already says what `update` says (then nothing is written). */
export function sameCondition(
  existing: { status: string; reason: string; message: string } | undefined,
  update: ConditionUpdate,
): boolean {
  return (
    existing?.status === update.status &&
    existing.reason === update.reason &&
    existing.message === update.message
  );
}

/** A cached workload with its kind. */
export interface KindedWorkload {
  readonly kind: RestartKind;
  readonly workload: WorkloadView;
}

/**
 * The reload-annotated workloads whose pod template uses `secretName`, sorted by kind and name.
 * `workloads` must be those of the key Secret's own namespace: a Pod can only use Secrets of its
 * namespace, and keyrotor restarts nothing anywhere else.
 */
export function reloadTargetsUsing(
  workloads: readonly KindedWorkload[],
  secretName: string,
): RestartTarget[] {
  const targets: RestartTarget[] = [];
  for (const { kind, workload } of workloads) {
    const name = workload.metadata.name;
    if (name === undefined || !asksForReload(workload.metadata.annotations)) continue;
    if (workload.secretNames?.includes(secretName) === true) targets.push({ kind, name });
  }
  return targets.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
}
