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
  WorkloadRestarted: 'WorkloadRestarted',
  WorkloadNotFound: 'WorkloadNotFound',
  /** Ready=False: the ApiKeyIssuer named by issuerRef refuses the key (a rule of it is broken). */
  NotPermitted: 'NotPermitted',
  /** Ready=False: the ApiKeyIssuer named by issuerRef does not exist. */
  IssuerNotFound: 'IssuerNotFound',
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
