// The ApiKey resource as the API server stores it (crds/keyrotor.dev_apikeys.yaml is the schema).
// Timestamps are RFC 3339 strings: the cache may hold Date objects for built-in types, never for these.

export type Environment = 'development' | 'test' | 'staging' | 'production';
export const ENVIRONMENTS: readonly Environment[] = ['development', 'test', 'staging', 'production'];

export interface RotationSpec {
  rotateBefore?: string;
  schedule?: string;
  timeZone?: string;
  gracePeriod?: string;
}

export interface SecretTemplate {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Extra data keys of the Secret, each rendered from a template over the key (reconcile/secret-template.ts). */
  data?: Record<string, string>;
}

export interface ApiKeySpec {
  secretName?: string;
  environment?: Environment;
  scopes?: string[];
  keyPrefix?: string;
  keyBits?: number;
  expiresAfter?: string;
  rotation?: RotationSpec;
  secretTemplate?: SecretTemplate;
  revoked?: boolean;
  revocationReason?: string;
  readers?: { serviceAccounts?: string[] };
  rolloutRestartTargets?: { kind: string; name: string }[];
  issuerRef?: IssuerRef;
}

/** The ApiKeyIssuer of the API a key is for. */
export interface IssuerRef {
  namespace: string;
  name: string;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** Why a key stopped being the current one. */
export type RetireReason = 'Expiry' | 'Schedule' | 'Manual' | 'Drift' | 'Revoked' | 'SpecChange';

export interface HistoryEntry {
  keyId: string;
  issuedAt?: string;
  retiredAt: string;
  reason: RetireReason;
}

export interface ApiKeyStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  secretName?: string;
  keyId?: string;
  issuedAt?: string;
  expiresAt?: string;
  nextRotationAt?: string;
  rotationCount?: number;
  /** The previous key, while its grace period lasts. */
  previousKeyId?: string;
  graceEndsAt?: string;
  /** The last value of the keyrotor.dev/rotate annotation acted on. */
  lastRotateRequest?: string;
  /**
   * The key sequence of the Secret keyrotor last wrote: one more with every change of key. A sealed
   * Secret with a lower one is an earlier state put back (docs/adr/0002-sealed-key-secrets.md).
   */
  keySequence?: number;
  /** Failed attempts at the current rotation; absent when the last one succeeded. */
  failedAttempts?: number;
  /** The last keys retired, newest first (at most 10). */
  history?: HistoryEntry[];
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  // Typed as the client types it; a watch delivers a string. Only its presence matters.
  deletionTimestamp?: Date;
}

export interface ApiKey {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: ApiKeySpec;
  status?: ApiKeyStatus;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** The ApiKeyIssuer resource (crds/keyrotor.dev_apikeyissuers.yaml is the schema). */
export interface ApiKeyIssuerSpec {
  scopes?: string[];
  environments?: Environment[];
  maxExpiresAfter?: string;
  requireSchedule?: boolean;
  namespaceSelector?: LabelSelector;
  verifierSecretName?: string;
}

export interface ApiKeyIssuerStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  verifierSecretName?: string;
  verifierRevision?: number;
  activeKeys?: number;
  consumers?: number;
  refusedKeys?: number;
}

export interface ApiKeyIssuer {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: ApiKeyIssuerSpec;
  status?: ApiKeyIssuerStatus;
}

/** One guarded Secret of a namespace: only these ServiceAccounts may use it in a Pod. */
export interface ReadersEntry {
  secretName: string;
  /** The ApiKey (or ApiKeys, comma-separated) whose key the Secret holds or will hold. */
  apiKey?: string;
  serviceAccounts?: string[];
}

/** The mount guard's parameters for one namespace (crds/keyrotor.dev_apikeyreaders.yaml). */
export interface ApiKeyReaders {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { secretCount?: number; secrets?: ReadersEntry[] };
}
