// What a plan asks the imperative shell to record besides its writes: Kubernetes Events and audit
// lines. The planners (reconcile/, issuer/) produce them; kube/events.ts and observability/audit.ts
// write them, so the types live here, below both.

/** The lifecycle actions the audit log records; one line per action, as JSON. */
export type AuditAction =
  | 'issued'
  | 'reissued'
  | 'rotated'
  | 'recreated'
  | 'replaced-tampered'
  | 'adopted'
  | 'restored'
  | 'recovered'
  | 'conflict'
  | 'rejected-spec'
  | 'rejected-secret'
  | 'revoked'
  | 'retired'
  | 'restarted'
  | 'restart-target-missing'
  | 'restart-target-found'
  | 'not-permitted';

export interface PlannedEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  /** What keyrotor did (events.k8s.io action), e.g. Issue, Rotate, Reconcile. */
  readonly action: string;
  readonly note: string;
}

export interface PlannedAudit {
  readonly action: AuditAction;
  readonly reason: string;
  readonly keyId?: string;
  readonly previousKeyId?: string;
  readonly message: string;
}
