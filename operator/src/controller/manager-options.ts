// What the manager (controller.ts) is configured with: the operator's flags as main.ts passes them,
// and the tests' knobs (clock, intervals).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import type { SealSecretRef } from '../kube/seal-key.ts';
import type { DecideConfig } from '../reconcile/decide.ts';

export interface ControllerOptions {
  readonly kc: KubeConfig;
  readonly logger: Logger;
  /** Namespaces to watch; all when empty. */
  readonly namespaces: readonly string[];
  /** Keys reconciled at once. */
  readonly concurrency: number;
  /** Identifies this process in Events (reportingInstance), e.g. the Pod name. */
  readonly instance: string;
  /** Every ApiKey is looked at again this often, whatever the watches say. */
  readonly resyncMs?: number;
  /**
   * Everything is listed again from the API server this often (default 1 h), on standbys too: a
   * safety net under the watches, which could miss an event without failing.
   */
  readonly relistMs?: number;
  readonly now?: () => Date;
  /** Everything decide() needs but the seal key, which the controller loads when it starts. */
  readonly decideConfig?: Omit<DecideConfig, 'sealKey'>;
  /**
   * The Secret that holds keyrotor's seal key (kube/seal-key.ts), created if missing: in keyrotor's own
   * namespace, never one a tenant may write. Default keyrotor-system/keyrotor-seal.
   */
  readonly sealSecret?: SealSecretRef;
  /**
   * Automatic rotations of one key are at least this far apart (DecideConfig.minRotationIntervalMs;
   * `--min-rotation-interval`). A decideConfig that sets its own value keeps it.
   */
  readonly minRotationIntervalMs?: number;
  /** Counts API requests by HTTP method (metrics, benchmarks, tests). */
  readonly onRequest?: (method: string) => void;
  /** Client-side request rate limit for the whole process (client-go's QPS and burst). */
  readonly qps?: number;
  readonly burst?: number;
  /** Restart requests for one workload within this window become one restart. */
  readonly restartDebounceMs?: number;
  /**
   * Run the readers controller (controller/readers.ts): a Role and RoleBinding per ApiKey for its
   * readers, and each namespace's mount guard.
   */
  readonly manageReaders?: boolean;
  /**
   * Run the workloads controller (controller/workloads.ts): watch Deployments, StatefulSets, DaemonSets
   * and Argo Rollouts, report missing rolloutRestartTargets (condition RestartTargetsReady), and restart
   * the workloads annotated keyrotor.dev/reload: "true" that use a Secret whose key was replaced.
   */
  readonly manageWorkloads?: boolean;
  /**
   * With leader election: how long this replica may still write (LeaderElector.writeBudgetMs). The
   * controller then keeps its caches warm but reconciles only after lead() is called.
   */
  readonly writeBudgetMs?: () => number;
  /** A watch silent for this long is relisted (ResilientInformer's staleness watchdog). */
  readonly staleAfterMs?: number;
  /**
   * New and rotated keys reach an issuer's verifier Secret at most this long after they are written,
   * so a rotation storm makes one verifier write per interval, not one per key. Keys that stop being
   * valid (revoked, deleted, refused) are removed at once. Default 1 s.
   */
  readonly verifierBatchMs?: number;
  /**
   * The largest verifier document written, in bytes of JSON (default MAX_VERIFIER_BYTES, what a
   * Secret holds). Beyond it removals are still written and new keys held back (VerifierTooLarge).
   */
  readonly verifierMaxBytes?: number;
}

/** controller-runtime's defaults are 20/30. keyrotor makes 4 requests per new key and 3 per rotation:
 * 20 new keys a second need 80 requests a second (see bench/RESULTS.md). */
export const DEFAULT_QPS = 100;
export const DEFAULT_BURST = 200;
