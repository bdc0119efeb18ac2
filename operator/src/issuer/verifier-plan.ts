// planVerifier(): the verifier Secret an issuer should have, its status, events and when to look again.
import { ISSUER_KIND } from '../api/names.ts';
import type { ApiKeyIssuer, ApiKeyIssuerStatus } from '../api/types.ts';
import { type ConditionUpdate, findCondition, READY, truncateMessage } from '../reconcile/conditions.ts';
import type { PlannedEvent } from '../reconcile/planned.ts';
import { Reason } from '../reconcile/reasons.ts';
import { isControlledBy, type SecretManifest } from '../reconcile/secret.ts';
import { stableJson } from '../reconcile/stable-json.ts';
import type { VerifierEntry } from '../verify/document.ts';
import {
  changeOf,
  MAX_VERIFIER_BYTES,
  readableDocument,
  readVerifierDocument,
  unwritable,
  type VerifierChange,
  type VerifierInput,
} from './verifier-document.ts';
import { holdsExactly, issuerStatus, verifierManifest, verifierSecretNameOf } from './verifier-secret.ts';

export interface VerifierPlan {
  /** Server-side apply of the verifier Secret, with the observed resourceVersion as a precondition. */
  readonly write: SecretManifest | undefined;
  /** What the write changes, for the audit log. */
  readonly change: VerifierChange | undefined;
  readonly status: ApiKeyIssuerStatus;
  readonly statusChanged: boolean;
  readonly events: readonly PlannedEvent[];
  /** The next time an entry's validity ends, when the document must change by itself. */
  readonly requeueAfterMs: number | undefined;
}

/** Ready=True, or Ready=False VerifierTooLarge while keys are held back; entries left out are counted. */
function readyCondition(
  secretName: string,
  invalid: number,
  fit: { keys: readonly VerifierEntry[]; heldBack: number; keptHeldBack: number },
  size: { wanted: number; fullSize: number; maxBytes: number },
): ConditionUpdate {
  const unlisted =
    invalid === 0
      ? ''
      : `, except ${invalid} ${invalid === 1 ? 'key' : 'keys'} whose validity times no reader would accept (left out)`;
  if (fit.heldBack + fit.keptHeldBack === 0) {
    return {
      type: READY,
      status: 'True',
      reason: Reason.VerifierUpToDate,
      message: `Secret ${secretName} lists the keys of every ApiKey this issuer permits${unlisted}`,
    };
  }
  return {
    type: READY,
    status: 'False',
    reason: Reason.VerifierTooLarge,
    message:
      `the verifier document for all ${size.wanted} keys would be ${size.fullSize} bytes, more than the ${size.maxBytes} it may hold: ` +
      `Secret ${secretName} lists ${fit.keys.length} of them, and no key that must stop working; ` +
      `${fit.heldBack} new ${fit.heldBack === 1 ? 'key is' : 'keys are'} held back until there is room` +
      (fit.keptHeldBack === 0 ? '' : `, and ${fit.keptHeldBack} listed before no longer fit`) +
      `${unlisted}. Split the consumers over more issuers`,
  };
}

/**
 * What the issuer's verifier Secret should hold and what its status should say. Pure: the controller
 * feeds it the caches and writes what it returns. Every document it returns for writing is one
 * keyrotor's own reader accepts; keys that must stop working are removed even when the document is
 * full, and only new keys that do not fit are held back (VerifierTooLarge).
 */
export function planVerifier(input: VerifierInput): VerifierPlan {
  const { issuer, now, verifierSecret } = input;
  const maxBytes = input.maxBytes ?? MAX_VERIFIER_BYTES;
  const secretName = verifierSecretNameOf(issuer);
  if (verifierSecret !== undefined && !isControlledBy(verifierSecret, issuer, ISSUER_KIND)) {
    const message = `Secret ${secretName} already exists and is not this issuer's verifier, so keyrotor will not overwrite it: delete it or set another spec.verifierSecretName`;
    return unwritable(input, Reason.VerifierConflict, message, {}, undefined);
  }

  const current = readVerifierDocument(verifierSecret);
  const { collected, next, text, refused } = readableDocument(input, current, maxBytes);
  const { keys: wanted, invalid, counts } = collected;
  const { document, unchanged, fit, fullSize } = next;
  const { keys, revision } = document;
  const nextEnd = keys.reduce((soonest, entry) => Math.min(soonest, Date.parse(entry.notAfter)), Infinity);
  const requeueAfterMs = Number.isFinite(nextEnd) ? Math.max(nextEnd - now.getTime(), 1_000) : undefined;

  const needsWrite = !unchanged || !holdsExactly(verifierSecret, issuer, text);
  // Never written: a document keyrotor's own reader refuses (every API of the issuer would be stuck).
  if (needsWrite && refused !== undefined) {
    const message = `keyrotor would write a verifier document its own reader refuses (${refused}), so it writes none; Secret ${secretName} keeps revision ${current?.revision ?? 0}`;
    return unwritable(input, Reason.VerifierWriteFailed, message, counts, requeueAfterMs);
  }

  const fields = { ...counts, activeKeys: keys.length, verifierRevision: revision };
  const held = fit.heldBack + fit.keptHeldBack;
  const update = readyCondition(secretName, invalid, fit, { wanted: wanted.length, fullSize, maxBytes });
  const status = issuerStatus(issuer, update, fields, now);
  const before = findCondition(issuer.status?.conditions, READY);
  const warn =
    held > 0 && (before?.reason !== update.reason || before.message !== truncateMessage(update.message));
  return {
    write: needsWrite ? verifierManifest(issuer, text, verifierSecret?.metadata?.resourceVersion) : undefined,
    change: needsWrite ? changeOf(current, document) : undefined,
    status,
    statusChanged: stableJson(status) !== stableJson(issuer.status ?? {}),
    events: warn
      ? [{ type: 'Warning', reason: Reason.VerifierTooLarge, action: 'WriteVerifier', note: update.message }]
      : [],
    requeueAfterMs,
  };
}

/** The issuer's status and Warning after the API server refused or failed a verifier write. */
export function verifierWriteFailed(
  issuer: ApiKeyIssuer,
  now: Date,
  serverMessage: string,
): { status: ApiKeyIssuerStatus; events: PlannedEvent[] } {
  const message = `could not write verifier Secret ${verifierSecretNameOf(issuer)}: ${serverMessage}; it keeps revision ${issuer.status?.verifierRevision ?? 0} and the write is retried`;
  return {
    status: issuerStatus(
      issuer,
      { type: READY, status: 'False', reason: Reason.VerifierWriteFailed, message },
      {},
      now,
    ),
    events: [{ type: 'Warning', reason: Reason.VerifierWriteFailed, action: 'WriteVerifier', note: message }],
  };
}

// The issuer planning's public face: callers import it from here, whatever module a part lives in.
export {
  MAX_ENTRY_HORIZON_MS,
  entriesFor,
  entryProblem,
  referencesIssuer,
  type Consumer,
  type Standing,
} from './verifier-entries.ts';
export {
  MAX_VERIFIER_BYTES,
  listedByConsumer,
  readVerifierDocument,
  type VerifierChange,
  type VerifierInput,
} from './verifier-document.ts';
export { verifierSecretNameOf } from './verifier-secret.ts';
