// What decide() takes and gives: its input, its configuration and the plan the controller carries out.
import type { ApiKey, ApiKeyIssuer, ApiKeyStatus, RetireReason } from '../api/types.ts';
import type { KeyOptions } from '../keys/format.ts';
import type { PlannedAudit, PlannedEvent } from './planned.ts';
import type { SecretLike, SecretManifest } from './secret.ts';
import type { RestartTarget } from './spec.ts';

/** How long to wait before looking again at a Secret keyrotor may not touch (it is not watched). */
export const CONFLICT_RECHECK_MS = 60_000;

export const EXPIRING_SOON = 'ExpiringSoon';

/** A condition: a rotation that is due waits for the previous key's grace period to end. */
export const ROTATION_DEFERRED = 'RotationDeferred';

export const DEFAULT_MIN_ROTATION_INTERVAL_MS = 5 * 60_000;

export interface DecideConfig {
  /** Makes a new key; the CSPRNG in production, a deterministic source in tests. */
  readonly generateKey: (options: KeyOptions) => string;
  /** The key keyrotor seals its Secrets with (reconcile/seal.ts); only keyrotor holds it. */
  readonly sealKey: Uint8Array;
  /** How soon to look again at a Secret keyrotor may not touch; default CONFLICT_RECHECK_MS. */
  readonly conflictRecheckMs?: number;
  /** Rotations due at one instant spread over this window (per key, the same on every run). */
  readonly rotationJitterMs?: number;
  /** Automatic rotations (expiry, schedule) of one key are at least this far apart; default 5 minutes. */
  readonly minRotationIntervalMs?: number;
  /**
   * Refuse keys in namespaces without the keyrotor.dev/environment label (`--require-environment-label`);
   * default false: an unlabelled namespace may hold keys of any environment.
   */
  readonly requireEnvironmentLabel?: boolean;
  /**
   * Secret replicator labels and annotations a secretTemplate may set anyway (`--allowed-replicator-keys`,
   * reconcile/replicators.ts); default none.
   */
  readonly allowedReplicatorKeys?: readonly string[];
}

export interface DecideInput {
  readonly apiKey: ApiKey;
  /** The Secret named by the spec as last observed, if it exists. */
  readonly secret: SecretLike | undefined;
  readonly now: Date;
  readonly config: DecideConfig;
  /** For a key with spec.issuerRef: the issuer as last observed and its namespace's labels. */
  readonly issuer?: IssuerContext;
  /**
   * The labels of the ApiKey's namespace as last observed (the environment rule reads them); when
   * absent, those of `issuer`, else none.
   */
  readonly namespaceLabels?: Readonly<Record<string, string>>;
}

export interface IssuerContext {
  readonly issuer: ApiKeyIssuer | undefined;
  readonly namespaceLabels: Readonly<Record<string, string>>;
}

export type SecretWrite =
  /** Server-side apply; with metadata.resourceVersion set when it updates what was observed. */
  | {
      readonly kind: 'apply';
      readonly manifest: SecretManifest;
      /**
       * keyrotor's fields someone else added ("data.previous-api-key", "annotations.keyrotor.dev/..."):
       * server-side apply keeps fields it does not own, so they are removed first (a JSON patch).
       */
      readonly strip?: readonly string[];
    }
  /** The type of a Secret cannot change in place: delete the one observed (by uid) and create. */
  | { readonly kind: 'recreate'; readonly manifest: SecretManifest; readonly uid: string };

export interface Plan {
  readonly secretWrite: SecretWrite | undefined;
  readonly status: ApiKeyStatus;
  /** False when the status already says all this: then nothing is written. */
  readonly statusChanged: boolean;
  readonly events: readonly PlannedEvent[];
  readonly audit: readonly PlannedAudit[];
  /** Look at this ApiKey again after this long (next rotation, end of a grace period, a conflict). */
  readonly requeueAfterMs: number | undefined;
  /** Set when this plan replaces a key that workloads may hold: why. */
  readonly replaced: RetireReason | undefined;
  /** Workloads to restart once the Secret write succeeded. */
  readonly restart: readonly RestartTarget[];
}

export const at = (time: Date) => time.toISOString();

export const minInterval = (config: DecideConfig) =>
  config.minRotationIntervalMs ?? DEFAULT_MIN_ROTATION_INTERVAL_MS;

export const addMs = (time: Date, ms: number) => new Date(time.getTime() + ms);

export const NOTHING: Omit<Plan, 'status'> = {
  secretWrite: undefined,
  statusChanged: false,
  events: [],
  audit: [],
  requeueAfterMs: undefined,
  replaced: undefined,
  restart: [],
};
