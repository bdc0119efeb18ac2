// What the observed Secret is to keyrotor (missing, owned, adoptable, foreign; trusted or tampered),
// and the write that brings it to the desired manifest, with the drift it reports.
import { ANNOTATION_ADOPT, ANNOTATION_SEAL, KIND } from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import type { KeyChoice } from './key-issue.ts';
import type { DecideInput, SecretWrite } from './plan.ts';
import type { PlannedAudit, PlannedEvent } from './planned.ts';
import { Reason } from './reasons.ts';
import { staleRenderedParts } from './secret-data.ts';
import {
  isControlledBy,
  type SecretContents,
  secretDrift,
  type SecretLike,
  type SecretManifest,
} from './secret.ts';
import { trustSecret } from './trust.ts';

function withResourceVersion(manifest: SecretManifest, resourceVersion: string | undefined): SecretManifest {
  return resourceVersion === undefined
    ? manifest
    : { ...manifest, metadata: { ...manifest.metadata, resourceVersion } };
}

/**
 * The drift no decision of keyrotor's explains: a replaced key changes the data and the annotations,
 * and a grace period that ended removes the previous key; anything else was edited outside keyrotor.
 */
function editsFromOutside(drift: readonly string[], changedByDecision: boolean): string[] {
  const explained = (what: string) =>
    what.startsWith('data.previous-') ||
    (changedByDecision && (what.startsWith('data.') || what === 'annotations'));
  return drift.filter((what) => !explained(what));
}

interface SecretPlan {
  readonly write: SecretWrite | undefined;
  readonly events: PlannedEvent[];
  readonly audit: PlannedAudit[];
}

export type Ownership = 'missing' | 'owned' | 'adoptable' | 'foreign';

/** What an owned Secret holds that keyrotor can believe, or why it believes none of it. */
export type Observed =
  | { readonly trusted: SecretContents; readonly ignored: readonly string[]; readonly tampered?: undefined }
  | {
      readonly trusted?: undefined;
      readonly ignored?: undefined;
      readonly tampered: { readonly why: string; readonly raw: SecretContents };
    }
  | { readonly trusted?: undefined; readonly ignored?: undefined; readonly tampered?: undefined };

/** How to bring the Secret to `manifest`, if it is not there already. */
export function planSecret(
  input: DecideInput,
  manifest: SecretManifest,
  choice: KeyChoice,
  ownership: Ownership,
  ignored: readonly string[] = [],
): SecretPlan {
  const { apiKey, secret } = input;
  if (secret === undefined) {
    // Revoked with no Secret: nothing to write until a key is wanted again.
    return {
      write: choice.current === undefined ? undefined : { kind: 'apply', manifest },
      events: [],
      audit: [],
    };
  }
  if (ownership !== 'owned') {
    // Adopting: replace exactly the version observed, recreating it if its type must change.
    const write: SecretWrite =
      secret.type === manifest.type
        ? { kind: 'apply', manifest: withResourceVersion(manifest, secret.metadata?.resourceVersion) }
        : { kind: 'recreate', manifest, uid: secret.metadata?.uid ?? '' };
    return { write, events: [], audit: [] };
  }
  const drift = secretDrift(secret, manifest);
  let write: SecretWrite | undefined;
  if (drift.includes('type')) {
    write = { kind: 'recreate', manifest, uid: secret.metadata?.uid ?? '' };
  } else if (drift.length > 0 || ignored.length > 0) {
    // The resourceVersion makes the write fail if the Secret changed since it was decided on.
    const applied = withResourceVersion(manifest, secret.metadata?.resourceVersion);
    write =
      ignored.length > 0
        ? { kind: 'apply', manifest: applied, strip: ignored }
        : { kind: 'apply', manifest: applied };
  }
  return { write, ...driftReport(apiKey, secret, manifest, drift, choice, ignored) };
}

/** Drift while the spec stood still was someone else's edit: say so. A spec change is not drift. */
function driftReport(
  apiKey: ApiKey,
  secret: SecretLike,
  manifest: SecretManifest,
  drift: readonly string[],
  choice: KeyChoice,
  ignored: readonly string[],
): Omit<SecretPlan, 'write'> {
  const changedByDecision = choice.replaced !== undefined || choice.events.length > 0;
  // A Secret written before seals existed gets its seal now: that is an upgrade, not an edit.
  const unsealed = secret.metadata?.annotations?.[ANNOTATION_SEAL] === undefined;
  const fromOutside = editsFromOutside(drift, changedByDecision).filter(
    (what) => !(unsealed && what === 'annotations'),
  );
  const edits = [...new Set([...fromOutside, ...ignored])];
  if (apiKey.status?.observedGeneration !== apiKey.metadata.generation || edits.length === 0) {
    return { events: [], audit: [] };
  }
  const note = `restored ${edits.join(', ')} of Secret ${manifest.metadata.name}, changed outside keyrotor`;
  return {
    events: [{ type: 'Warning', reason: Reason.SecretDrifted, action: 'Reconcile', note }],
    audit: [
      {
        action: 'restored',
        reason: Reason.SecretDrifted,
        ...(choice.current ? { keyId: choice.current.keyId } : {}),
        message: note,
      },
    ],
  };
}

/**
 * What to remove before the apply: parts someone else added, and rendered parts no longer wanted, as
 * keyrotor's sealed record names them (or, on a tampered Secret, as it claims: key material errs out).
 */
export function toStrip(
  secret: SecretLike | undefined,
  manifest: SecretManifest,
  observed: Observed,
): string[] {
  const recorded = observed.trusted?.renderedNames ?? observed.tampered?.raw.renderedNames ?? [];
  const stale = staleRenderedParts(recorded, secret?.data, manifest.data);
  return [...new Set([...(observed.ignored ?? []), ...stale])];
}

/** An owned Secret's contents as far as they can be believed (reconcile/trust.ts). */
export function observe(input: DecideInput, ownership: Ownership): Observed {
  if (ownership !== 'owned' || input.secret === undefined) return {};
  const trust = trustSecret(input.apiKey, input.secret, input.config.sealKey);
  if (trust.kind === 'tampered') return { tampered: { why: trust.why, raw: trust.contents } };
  return { trusted: trust.contents, ignored: trust.kind === 'sealed' ? trust.ignored : [] };
}

/** Whose Secret it is: none yet, this ApiKey's, someone else's that may be adopted, or someone else's. */
export function ownershipOf(secret: SecretLike | undefined, apiKey: ApiKey): Ownership {
  if (secret === undefined) return 'missing';
  if (isControlledBy(secret, apiKey)) return 'owned';
  // Another ApiKey's Secret is never adoptable: whoever may annotate it must not hand its key over.
  const ownedByAnApiKey = (secret.metadata?.ownerReferences ?? []).some(
    (ref) => ref.controller === true && ref.kind === KIND,
  );
  if (ownedByAnApiKey) return 'foreign';
  return secret.metadata?.annotations?.[ANNOTATION_ADOPT] === 'true' ? 'adoptable' : 'foreign';
}
