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
  WorkloadRestarted: 'WorkloadRestarted',
  WorkloadNotFound: 'WorkloadNotFound',
} as const;

export type Reason = (typeof Reason)[keyof typeof Reason];
