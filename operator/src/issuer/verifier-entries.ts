// What an issuer's verifier lists for one consumer ApiKey: its current key and, in its grace period, the
// previous one, with the window keyrotor decided; or nothing, and why (its standing).
import type { ApiKey, ApiKeyIssuer, Environment } from '../api/types.ts';
import { keyHash } from '../keys/format.ts';
import { admit } from '../reconcile/admission.ts';
import { findCondition, READY } from '../reconcile/conditions.ts';
import { environmentProblem } from '../reconcile/environment.ts';
import { Reason } from '../reconcile/reasons.ts';
import { isControlledBy, type SecretLike } from '../reconcile/secret.ts';
import { resolveSpec } from '../reconcile/spec.ts';
import { trustSecret } from '../reconcile/trust.ts';
import { parseVerifierDocument, VERIFIER_API_VERSION, type VerifierEntry } from '../verify/document.ts';

const DAY_MS = 86_400_000;

/**
 * The latest notAfter keyrotor writes, from now: the longest lifetime an ApiKey may ask for (3650d),
 * and a day for a replica whose clock ran ahead when it issued the key. A later time (a year past
 * 9999 among them) is not one keyrotor gave, and readers may not parse it.
 */
export const MAX_ENTRY_HORIZON_MS = 3651 * DAY_MS;

export interface Consumer {
  readonly apiKey: ApiKey;
  /** The ApiKey's Secret as last observed. */
  readonly secret: SecretLike | undefined;
}

export const consumerKey = (consumer: { namespace: string; name: string }) =>
  `${consumer.namespace}/${consumer.name}`;

export function referencesIssuer(apiKey: ApiKey, issuer: Pick<ApiKeyIssuer, 'metadata'>): boolean {
  const ref = apiKey.spec.issuerRef;
  return ref?.namespace === issuer.metadata.namespace && ref.name === issuer.metadata.name;
}

export type Standing = 'permitted' | 'refused' | 'none';

/** Later than this no entry is valid: readers want four-digit years, and no key lives ten years. */
const MAX_LIFETIME_MS = 3650 * 86_400_000;

/**
 * The verifier entries of one ApiKey: its current key and, during its grace period, the previous one,
 * each with the window keyrotor decided. Only a Secret keyrotor sealed counts (reconcile/trust.ts):
 * a key, an expiry or a grace end written by anyone else lists nothing. A key being deleted, revoked,
 * refused by the issuer, forbidden by its namespace's environment label or expired gets none. An ApiKey whose spec the controller cannot read keeps
 * the entries it had, as its key keeps working in the Secret (never past their own notAfter).
 */
export function entriesFor(
  consumer: Consumer,
  issuer: ApiKeyIssuer,
  namespaceLabels: Readonly<Record<string, string>>,
  listed: readonly VerifierEntry[],
  now: Date,
  sealKey: Uint8Array,
): { entries: VerifierEntry[]; standing: Standing } {
  const { apiKey, secret } = consumer;
  // Revocation first: whatever else the spec says, a revoked key is listed nowhere.
  if (
    apiKey.metadata.deletionTimestamp !== undefined ||
    apiKey.spec.revoked === true ||
    !referencesIssuer(apiKey, issuer)
  ) {
    return { entries: [], standing: 'none' };
  }
  const stillValid = (entry: VerifierEntry) => Date.parse(entry.notAfter) > now.getTime();
  const resolved = resolveSpec(apiKey, now);
  if (!resolved.ok) return { entries: listed.filter(stillValid), standing: 'permitted' };
  const spec = resolved.spec;
  if (!admit(apiKey, spec, issuer, namespaceLabels).permitted) return { entries: [], standing: 'refused' };
  if (environmentForbids(apiKey, spec.environment, namespaceLabels))
    return { entries: [], standing: 'refused' };
  if (secret === undefined || !isControlledBy(secret, apiKey)) return { entries: [], standing: 'permitted' };
  const trust = trustSecret(apiKey, secret, sealKey);
  // A sealed state older than the status may be a Secret cache that lags the ApiKey's: keep what is
  // listed (built from trusted state before); anything else not keyrotor's lists nothing.
  if (trust.kind === 'tampered')
    return { entries: trust.replayed ? listed.filter(stillValid) : [], standing: 'permitted' };

  const contents = trust.contents;
  const { namespace, name } = apiKey.metadata;
  const about = { scopes: spec.scopes, environment: spec.environment, consumer: { namespace, name } };
  const entries: VerifierEntry[] = [];
  const add = (key: string | undefined, notBefore: Date, notAfter: Date | undefined) => {
    if (key === undefined || notAfter === undefined) return;
    // Never later than the spec allows from when the key was issued, nor than any key may live.
    const end = Math.min(
      notAfter.getTime(),
      notBefore.getTime() + spec.expiresAfterMs,
      now.getTime() + MAX_LIFETIME_MS,
    );
    if (!(end > now.getTime())) return;
    const sha256 = keyHash(key);
    entries.push({
      keyId: sha256.slice(0, 16),
      sha256,
      ...about,
      // The key is in its Secret now, so it is valid from now at the latest (whatever another replica's
      // clock said when it was issued); this also keeps notBefore before notAfter, as readers require.
      notBefore: new Date(Math.min(notBefore.getTime(), now.getTime())).toISOString(),
      notAfter: new Date(end).toISOString(),
    });
  };
  const issuedAt = contents.issuedAt ?? now;
  add(contents.key, issuedAt, contents.expiresAt);
  // The Secret does not record when the previous key was issued; the status history usually does, and
  // otherwise it was at the latest when the current key was.
  const previousIssuedAt = apiKey.status?.history?.find(
    (entry) => entry.keyId === contents.previousKeyId,
  )?.issuedAt;
  add(
    contents.previousKey,
    previousIssuedAt === undefined ? issuedAt : new Date(previousIssuedAt),
    contents.previousExpiresAt,
  );
  return { entries, standing: 'permitted' };
}

/**
 * The environment rule (reconcile/environment.ts, ADR 0003): a key its namespace's label forbids stops
 * verifying. A label naming another environment, or a value that is not one, is seen from the labels
 * alone, so the key leaves the verifier before its status says so. Whether the label is required at
 * all is the controller's flag (--require-environment-label), which only its decision knows: that
 * decision is the Ready condition, which only keyrotor writes.
 */
function environmentForbids(
  apiKey: ApiKey,
  environment: Environment,
  namespaceLabels: Readonly<Record<string, string>>,
): boolean {
  if (environmentProblem(apiKey.metadata.namespace, namespaceLabels, environment, false) !== undefined)
    return true;
  return findCondition(apiKey.status?.conditions, READY)?.reason === Reason.EnvironmentMismatch;
}

/**
 * Why an entry may not be written, or undefined: keyrotor's own reader would refuse it (times must be
 * RFC 3339 with a four-digit year, notAfter after notBefore, ...), or its times are out of bounds
 * (before 1970, or valid until later than any key keyrotor issues). Never names the key.
 */
export function entryProblem(entry: VerifierEntry, now: Date): string | undefined {
  const times = timeProblem(entry, now);
  if (times !== undefined) return times;
  const alone = { apiVersion: VERIFIER_API_VERSION, issuer: '', revision: 0, keys: [entry] };
  try {
    parseVerifierDocument(JSON.stringify(alone));
  } catch (error) {
    return (error as Error).message.replace(/^keys\[0\]: /, '');
  }
  return undefined;
}

/** The reader's rule for times (verify/document.ts): RFC 3339 with a zone and a four-digit year. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * entryProblem's checks of the times alone, the only fields of an entry that come from outside
 * keyrotor's own computation: cheap enough for every entry of every plan. The whole document is
 * parsed again before it is written (planVerifier), and entryProblem decides then if that fails.
 */
export function timeProblem(entry: VerifierEntry, now: Date): string | undefined {
  const notBefore = RFC3339.test(entry.notBefore) ? Date.parse(entry.notBefore) : NaN;
  const notAfter = RFC3339.test(entry.notAfter) ? Date.parse(entry.notAfter) : NaN;
  if (Number.isNaN(notBefore)) return 'notBefore must be an RFC 3339 time';
  if (Number.isNaN(notAfter)) return 'notAfter must be an RFC 3339 time';
  if (notAfter <= notBefore) return 'notAfter must be after notBefore';
  if (notBefore < 0) return 'notBefore is before 1970';
  if (notAfter > now.getTime() + MAX_ENTRY_HORIZON_MS)
    return `notAfter is more than ${MAX_ENTRY_HORIZON_MS / DAY_MS} days from now`;
  return undefined;
}
