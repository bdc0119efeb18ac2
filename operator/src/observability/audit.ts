import type { Logger } from 'pino';

import type { AuditAction } from '../reconcile/planned.ts';

export interface AuditEntry {
  readonly action: AuditAction;
  readonly namespace: string;
  readonly apiKey: string;
  readonly secret: string;
  /** The key now current (fingerprint), when there is one. */
  readonly keyId?: string;
  /** The key replaced, when one was. */
  readonly previousKeyId?: string;
  readonly reason: string;
  readonly message: string;
  /**
   * For a step that writes the key Secret: `intent` just before the write, then `done` or `failed`
   * after it, so a crash between the two still leaves the intent on record.
   */
  readonly phase?: 'intent' | 'done' | 'failed';
}

/**
 * Writes audit lines through the operator's logger (so they share its redaction), marked `audit: true`
 * for a log pipeline to keep: Events live an hour in etcd, the audit trail must outlive them.
 */
export function writeAudit(logger: Logger, entry: AuditEntry): void {
  logger.info({ audit: true, ...entry }, `audit: ${entry.action} ${entry.namespace}/${entry.apiKey}`);
}

export interface VerifierAuditEntry {
  readonly namespace: string;
  readonly issuer: string;
  readonly secret: string;
  readonly revision: number;
  /** Key ids (never keys) the write added and removed. */
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** One audit line per verifier write: which key ids an API starts and stops accepting. */
export function writeVerifierAudit(logger: Logger, entry: VerifierAuditEntry): void {
  logger.info(
    { audit: true, action: 'verifier-updated', ...entry },
    `audit: verifier-updated ${entry.namespace}/${entry.issuer} revision ${entry.revision}`,
  );
}
