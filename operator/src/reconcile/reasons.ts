// Reasons shared by the Ready condition and by Events, in UpperCamelCase as Kubernetes writes them.

export const Reason = {
  /** Ready=True: a valid key is in the Secret. */
  KeyIssued: 'KeyIssued',
  Issued: 'Issued',
  Rotated: 'Rotated',
  Reissued: 'Reissued',
  Expired: 'Expired',
  PreviousKeyRetired: 'PreviousKeyRetired',
  SecretRecreated: 'SecretRecreated',
  SecretTampered: 'SecretTampered',
  SecretDrifted: 'SecretDrifted',
  SecretAdopted: 'SecretAdopted',
  SecretConflict: 'SecretConflict',
  SecretRejected: 'SecretRejected',
  InvalidSpec: 'InvalidSpec',
  Revoked: 'Revoked',
  RotationFailed: 'RotationFailed',
  ExpiringSoon: 'ExpiringSoon',
  /** A due rotation waits for the previous key's grace period to end (condition RotationDeferred). */
  RotationDeferred: 'RotationDeferred',
  /** RotationDeferred=True: why it waits. */
  GracePeriod: 'GracePeriod',
  /** MountGuard=True: only the ApiKey's readers use its Secret. */
  Guarded: 'Guarded',
  /** MountGuard=False, and a Warning event: running Pods use the Secret as ServiceAccounts not listed. */
  UnlistedConsumers: 'UnlistedConsumers',
  /** MountGuard=False: the ApiKey lists no readers (any workload of the namespace may use the key). */
  NoReaders: 'NoReaders',
  WorkloadRestarted: 'WorkloadRestarted',
  WorkloadNotFound: 'WorkloadNotFound',
  /** RestartTargetsReady=True: every workload in rolloutRestartTargets exists. */
  RestartTargetsFound: 'RestartTargetsFound',
  /** RestartTargetsReady=False, and a Warning event: a workload in rolloutRestartTargets does not exist. */
  RestartTargetMissing: 'RestartTargetMissing',
  /** Ready=False: the ApiKeyIssuer named by issuerRef refuses the key (a rule of it is broken). */
  NotPermitted: 'NotPermitted',
  /** Ready=False: the ApiKeyIssuer named by issuerRef does not exist. */
  IssuerNotFound: 'IssuerNotFound',
  /**
   * Ready=False: the namespace's keyrotor.dev/environment label names another environment, is not an
   * environment, or is required and absent; the key is kept but neither issued nor rotated (ADR 0003).
   */
  EnvironmentMismatch: 'EnvironmentMismatch',
  /** ApiKeyIssuer Ready=True: its verifier Secret lists exactly the keys it permits. */
  VerifierUpToDate: 'VerifierUpToDate',
  /** ApiKeyIssuer Ready=False: a Secret of the verifier's name exists and is not this issuer's. */
  VerifierConflict: 'VerifierConflict',
  /** ApiKeyIssuer Ready=False: the document would exceed the 1 MiB a Secret may hold. */
  VerifierTooLarge: 'VerifierTooLarge',
  /** ApiKeyIssuer Ready=False: the API server refused or failed the verifier write. */
  VerifierWriteFailed: 'VerifierWriteFailed',
} as const;

export type Reason = (typeof Reason)[keyof typeof Reason];
