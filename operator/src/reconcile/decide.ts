import { ANNOTATION_ADOPT, ANNOTATION_ROTATE, ANNOTATION_SEAL, KIND } from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer, ApiKeyStatus, HistoryEntry, RetireReason } from '../api/types.ts';
import { admit } from './admission.ts';
import type { AuditAction, PlannedAudit, PlannedEvent } from './planned.ts';
import { keyHash, keyId, parseKey, type KeyOptions } from '../keys/format.ts';
import { READY, findCondition, setCondition, truncateMessage } from './conditions.ts';
import { dueTimes } from './due.ts';
import { environmentProblem } from './environment.ts';
import { withHistory } from './history.ts';
import { Reason } from './reasons.ts';
import { stableJson } from './stable-json.ts';
import {
  desiredSecret,
  isControlledBy,
  secretDrift,
  type CurrentKey,
  type PreviousKey,
  type SecretContents,
  type SecretLike,
  type SecretManifest,
  type SecretState,
} from './secret.ts';
import { staleRenderedParts } from './secret-data.ts';
import { MOUNT_GUARD } from './mount-guard.ts';
import { RESTART_TARGETS_READY } from './restart-targets.ts';
import { resolveSpec, revocationSpec, secretNameOf, type ResolvedSpec, type RestartTarget } from './spec.ts';
import { trustSecret } from './trust.ts';

/** How long to wait before looking again at a Secret keyrotor may not touch (it is not watched). */
export const CONFLICT_RECHECK_MS = 60_000;
export const EXPIRING_SOON = 'ExpiringSoon';
/** A condition: a rotation that is due waits for the previous key's grace period to end. */
export const ROTATION_DEFERRED = 'RotationDeferred';
export const DEFAULT_MIN_ROTATION_INTERVAL_MS = 5 * 60_000;
/** Rotate values longer than this are recorded by their SHA-256: status and annotations stay bounded. */
const MAX_ROTATE_REQUEST_CHARS = 128;
/** A failing rotation is reported as ExpiringSoon once less than this share of the lifetime is left. */
const EXPIRING_SOON_SHARE = 0.1;

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

const at = (time: Date) => time.toISOString();
const minInterval = (config: DecideConfig) =>
  config.minRotationIntervalMs ?? DEFAULT_MIN_ROTATION_INTERVAL_MS;
const addMs = (time: Date, ms: number) => new Date(time.getTime() + ms);

const NOTHING: Omit<Plan, 'status'> = {
  secretWrite: undefined,
  statusChanged: false,
  events: [],
  audit: [],
  requeueAfterMs: undefined,
  replaced: undefined,
  restart: [],
};

/** Ready=False for a reason keyrotor cannot fix by itself; the Secret is left exactly as it is. */
function refuse(
  input: Pick<DecideInput, 'apiKey' | 'now'>,
  reason: string,
  message: string,
  audit: AuditAction,
  requeueAfterMs: number | undefined,
): Plan {
  const { apiKey, now } = input;
  // Never the other controllers' conditions: applied here, they would be this field manager's too.
  const previous = withoutOthersConditions(apiKey.status ?? {});
  const generation = apiKey.metadata.generation;
  const before = findCondition(previous.conditions, READY);
  const status: ApiKeyStatus = {
    ...previous,
    secretName: secretNameOf(apiKey),
    conditions: setCondition(
      previous.conditions,
      { type: READY, status: 'False', reason, message },
      now,
      generation,
    ),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  // Report each refusal once, when it starts or its message changes: no event storm on every resync.
  const isNew =
    before?.reason !== reason || before.message !== truncateMessage(message) || before.status !== 'False';
  return {
    ...NOTHING,
    status,
    statusChanged: stableJson(status) !== stableJson(previous),
    events: isNew ? [{ type: 'Warning', reason, action: 'Reconcile', note: message }] : [],
    audit: isNew
      ? [{ action: audit, reason, message, ...(previous.keyId ? { keyId: previous.keyId } : {}) }]
      : [],
    requeueAfterMs,
  };
}

/**
 * The plan after the API server refused or failed a Secret write. A failed rotation keeps the old key
 * (still valid) and counts the attempt, warning ExpiringSoon once little of the key's life is left;
 * any other refused write is Ready=False, SecretRejected. Either way the caller retries with backoff.
 */
export function recordFailure(apiKey: ApiKey, failed: Plan, now: Date, serverMessage: string): Plan {
  const status = apiKey.status ?? {};
  const attempts = (status.failedAttempts ?? 0) + 1;
  if (failed.replaced === undefined || status.keyId === undefined || status.expiresAt === undefined) {
    const kept = status.keyId ? `; key ${status.keyId} is unchanged` : '';
    const message = `the API server refused Secret ${secretNameOf(apiKey)}: ${serverMessage}${kept}`;
    const refusal = refuse({ apiKey, now }, Reason.SecretRejected, message, 'rejected-secret', undefined);
    return { ...refusal, status: { ...refusal.status, failedAttempts: attempts }, statusChanged: true };
  }
  const expiresAt = new Date(status.expiresAt);
  const lifetime = expiresAt.getTime() - new Date(status.issuedAt ?? status.expiresAt).getTime();
  const nearExpiry = expiresAt.getTime() - now.getTime() < lifetime * EXPIRING_SOON_SHARE;
  const note = `rotation of key ${status.keyId} failed (attempt ${attempts}): ${serverMessage}; retrying with backoff`;
  const events: PlannedEvent[] = [{ type: 'Warning', reason: Reason.RotationFailed, action: 'Rotate', note }];
  let conditions = status.conditions;
  if (nearExpiry) {
    const message = `key ${status.keyId} expires at ${status.expiresAt} and its rotation keeps failing: ${serverMessage}`;
    const wasWarned = findCondition(conditions, EXPIRING_SOON)?.status === 'True';
    conditions = setCondition(
      conditions,
      { type: EXPIRING_SOON, status: 'True', reason: Reason.RotationFailed, message },
      now,
      apiKey.metadata.generation,
    );
    if (!wasWarned)
      events.push({ type: 'Warning', reason: Reason.ExpiringSoon, action: 'Rotate', note: message });
  }
  return {
    ...NOTHING,
    status: { ...status, failedAttempts: attempts, ...(conditions ? { conditions } : {}) },
    statusChanged: true,
    events,
  };
}

/** What a decision does to the key: the state of the Secret after it, and how it got there. */
interface KeyChoice extends Omit<SecretState, 'sequence'> {
  /** Set when a key that workloads may hold was replaced (or revoked): why. */
  readonly replaced: RetireReason | undefined;
  readonly retired: readonly HistoryEntry[];
  readonly events: PlannedEvent[];
  readonly audit: PlannedAudit[];
  /** A due rotation waits until then, for the previous key's grace period: why and until when. */
  readonly deferred?: { readonly until: Date; readonly message: string };
}

function newKey(spec: ResolvedSpec, now: Date, config: DecideConfig): CurrentKey {
  const key = config.generateKey({
    prefix: spec.keyPrefix,
    environment: spec.environment,
    bits: spec.keyBits,
  });
  return { key, keyId: keyId(key), issuedAt: now, expiresAt: addMs(now, spec.expiresAfterMs) };
}

/** The key a Secret holds is trustworthy: well-formed, with a checksum and fingerprint that match. */
function trustedKey(contents: SecretContents): string | undefined {
  const { key } = contents;
  return key !== undefined && parseKey(key).ok && keyId(key) === contents.keyId ? key : undefined;
}

/** The previous key a Secret holds, while its grace period lasts. */
function keptPrevious(contents: SecretContents, now: Date): PreviousKey | undefined {
  const { previousKey, previousKeyId, previousExpiresAt } = contents;
  if (previousKey === undefined || previousKeyId === undefined || previousExpiresAt === undefined)
    return undefined;
  if (previousExpiresAt <= now || keyId(previousKey) !== previousKeyId) return undefined;
  return { key: previousKey, keyId: previousKeyId, expiresAt: previousExpiresAt };
}

function graceFor(old: CurrentKey, spec: ResolvedSpec, now: Date): PreviousKey | undefined {
  if (spec.gracePeriodMs <= 0 || old.expiresAt <= now) return undefined;
  const end = Math.min(now.getTime() + spec.gracePeriodMs, old.expiresAt.getTime());
  return { key: old.key, keyId: old.keyId, expiresAt: new Date(end) };
}

const retiredEntry = (
  keyIdValue: string,
  issuedAt: string | undefined,
  now: Date,
  reason: RetireReason,
): HistoryEntry => ({
  keyId: keyIdValue,
  ...(issuedAt === undefined ? {} : { issuedAt }),
  retiredAt: at(now),
  reason,
});

/**
 * The rotate annotation's value as keyrotor records it: as it is, or by its SHA-256 when it is long
 * (the tenant writes it; the status and the Secret annotation must stay within their limits).
 */
export function rotateRequestOf(apiKey: ApiKey): string | undefined {
  const requested = apiKey.metadata.annotations?.[ANNOTATION_ROTATE];
  if (requested === undefined || requested.length <= MAX_ROTATE_REQUEST_CHARS) return requested;
  return `sha256:${keyHash(requested)}`;
}

/** The rotate annotation's value when it asks for a rotation not yet handled. */
function pendingRotateRequest(apiKey: ApiKey, handled: string | undefined): string | undefined {
  const requested = rotateRequestOf(apiKey);
  return requested !== undefined && requested !== handled ? requested : undefined;
}

/** No key is in the Secret (it is missing, adopted, or revoked and now reinstated): issue one. */
function issueFresh(
  input: DecideInput,
  spec: ResolvedSpec,
  contents: SecretContents | undefined,
  adopting: boolean,
): KeyChoice {
  const { apiKey, now, config } = input;
  const current = newKey(spec, now, config);
  const where = `Secret ${spec.secretName}`;
  // A rotate request made before the key existed asks for nothing: the key is new anyway.
  const rotateHandled = rotateRequestOf(apiKey) ?? contents?.rotateHandled;
  const base = { current, previous: undefined, rotateHandled, revokedKeyId: undefined, retired: [] };
  const lostKeyId = apiKey.status?.keyId;
  if (contents?.revokedKeyId !== undefined) {
    const note = `issued new key ${current.keyId} into ${where} after key ${contents.revokedKeyId} was revoked`;
    return {
      ...base,
      issueReason: 'Reinstated',
      replaced: undefined,
      events: [{ type: 'Normal', reason: Reason.Issued, action: 'Issue', note }],
      audit: [{ action: 'issued', reason: Reason.Issued, keyId: current.keyId, message: note }],
    };
  }
  if (adopting) {
    const note = `adopted existing ${where} (annotated ${ANNOTATION_ADOPT}=true) and issued key ${current.keyId}`;
    return {
      ...base,
      issueReason: 'Adopted',
      replaced: undefined,
      events: [{ type: 'Normal', reason: Reason.SecretAdopted, action: 'Issue', note }],
      audit: [{ action: 'adopted', reason: Reason.SecretAdopted, keyId: current.keyId, message: note }],
    };
  }
  if (lostKeyId !== undefined) {
    const note = `${where} was deleted; issued new key ${current.keyId} (key ${lostKeyId} is gone)`;
    return {
      ...base,
      issueReason: 'Drift',
      replaced: 'Drift',
      retired: [retiredEntry(lostKeyId, apiKey.status?.issuedAt, now, 'Drift')],
      events: [{ type: 'Warning', reason: Reason.SecretRecreated, action: 'Issue', note }],
      audit: [
        {
          action: 'recreated',
          reason: Reason.SecretRecreated,
          keyId: current.keyId,
          previousKeyId: lostKeyId,
          message: note,
        },
      ],
    };
  }
  const note = `issued key ${current.keyId} into ${where}, valid until ${at(current.expiresAt)}`;
  return {
    ...base,
    issueReason: 'Issue',
    replaced: undefined,
    events: [{ type: 'Normal', reason: Reason.Issued, action: 'Issue', note }],
    audit: [{ action: 'issued', reason: Reason.Issued, keyId: current.keyId, message: note }],
  };
}

/** spec.revoked: the Secret keeps no key at all, at once, grace period or not. */
function revoke(input: DecideInput, spec: ResolvedSpec, contents: SecretContents | undefined): KeyChoice {
  const { apiKey, now } = input;
  const rotateHandled = contents?.rotateHandled;
  const revokedKeyId = contents?.revokedKeyId ?? contents?.keyId ?? apiKey.status?.keyId;
  const base = {
    current: undefined,
    previous: undefined,
    issueReason: 'Revoked',
    rotateHandled,
    revokedKeyId,
  };
  if (contents === undefined || contents.key === undefined || revokedKeyId === undefined) {
    return { ...base, replaced: undefined, retired: [], events: [], audit: [] };
  }
  const why = spec.revocationReason ? `: ${spec.revocationReason}` : '';
  const grace = contents.previousKeyId ? ` and previous key ${contents.previousKeyId}` : '';
  const note = `revoked key ${revokedKeyId}${grace}${why}; Secret ${spec.secretName} holds no key until revoked is set to false`;
  return {
    ...base,
    replaced: 'Revoked',
    retired: [retiredEntry(revokedKeyId, contents.issuedAt && at(contents.issuedAt), now, 'Revoked')],
    events: [{ type: 'Warning', reason: Reason.Revoked, action: 'Revoke', note }],
    audit: [{ action: 'revoked', reason: Reason.Revoked, keyId: revokedKeyId, message: note }],
  };
}

/** Why an existing, trusted key must be replaced now, if it must. */
function replacementReason(
  input: DecideInput,
  spec: ResolvedSpec,
  existing: CurrentKey,
  handled: string | undefined,
): RetireReason | undefined {
  const { apiKey, now, config } = input;
  const parsed = parseKey(existing.key);
  if (
    parsed.ok &&
    (parsed.key.prefix !== spec.keyPrefix ||
      parsed.key.environment !== spec.environment ||
      parsed.key.bits !== spec.keyBits)
  ) {
    return 'SpecChange';
  }
  if (pendingRotateRequest(apiKey, handled) !== undefined) return 'Manual';
  const due = dueTimes(
    spec,
    existing,
    apiKey.metadata.uid,
    config.rotationJitterMs ?? 0,
    minInterval(config),
  );
  if (now >= due.expiryDueAt) return 'Expiry';
  if (due.scheduleDueAt !== undefined && now >= due.scheduleDueAt) return 'Schedule';
  return undefined;
}

const ROTATION_NOTES: Record<RetireReason, string> = {
  Expiry: 'it was due before its expiry',
  Schedule: 'the rotation schedule fired',
  Manual: 'the keyrotor.dev/rotate annotation asked for it',
  SpecChange: 'the spec changed the key format (prefix, environment or bits)',
  Drift: 'the Secret was changed outside keyrotor',
  Revoked: 'it was revoked',
};

/** Key material edited outside keyrotor is no longer trusted: a fresh key, no grace for the old one. */
function replaceUntrusted(
  input: DecideInput,
  spec: ResolvedSpec,
  handled: string | undefined,
  why = 'its key material was changed outside keyrotor',
): KeyChoice {
  const { apiKey, now, config } = input;
  const where = `Secret ${spec.secretName}`;
  const current = newKey(spec, now, config);
  // The id keyrotor recorded, never one the Secret claims: an edited Secret may name any id.
  const lost = apiKey.status?.keyId;
  const note = `${where} is no longer trusted (${why}); issued new key ${current.keyId}, no grace period for any key it held`;
  return {
    current,
    previous: undefined,
    issueReason: 'Drift',
    rotateHandled: rotateRequestOf(apiKey) ?? handled,
    revokedKeyId: undefined,
    replaced: 'Drift',
    retired: lost === undefined ? [] : [retiredEntry(lost, apiKey.status?.issuedAt, now, 'Drift')],
    events: [{ type: 'Warning', reason: Reason.SecretTampered, action: 'Issue', note }],
    audit: [
      {
        action: 'replaced-tampered',
        reason: Reason.SecretTampered,
        keyId: current.keyId,
        ...(lost ? { previousKeyId: lost } : {}),
        message: note,
      },
    ],
  };
}

/**
 * One previous slot: rotating while a previous key is in its grace period would drop a key whose grace
 * was promised, so the rotation waits for it to end (a revocation never waits, nor does a key that has
 * expired, nor a change of environment).
 */
function deferral(
  reason: RetireReason,
  existing: CurrentKey,
  kept: PreviousKey | undefined,
  now: Date,
): KeyChoice['deferred'] {
  if (kept === undefined || now >= existing.expiresAt) return undefined;
  // Never past the current key's own expiry: then it rotates, grace or not (an expired key is no use).
  const until = new Date(Math.min(kept.expiresAt.getTime(), existing.expiresAt.getTime()));
  const message = `rotation (${reason}) of key ${existing.keyId} is deferred until ${at(until)}, when the grace period of previous key ${kept.keyId} ends`;
  return { until, message };
}

/** The Normal event and audit line of a previous key whose grace period has ended. */
function graceEnded(contents: SecretContents, kept: PreviousKey | undefined, where: string) {
  const events: PlannedEvent[] = [];
  const audit: PlannedAudit[] = [];
  const retired = contents.previousKeyId;
  if (retired !== undefined && kept === undefined) {
    const note = `previous key ${retired} retired from ${where}: its grace period ended`;
    events.push({ type: 'Normal', reason: Reason.PreviousKeyRetired, action: 'Retire', note });
    audit.push({ action: 'retired', reason: Reason.PreviousKeyRetired, keyId: retired, message: note });
  }
  return { events, audit };
}

function chooseForExisting(input: DecideInput, spec: ResolvedSpec, contents: SecretContents): KeyChoice {
  const { apiKey, now, config } = input;
  const where = `Secret ${spec.secretName}`;
  const handled = contents.rotateHandled ?? apiKey.status?.lastRotateRequest;
  const key = trustedKey(contents);
  if (key === undefined) return replaceUntrusted(input, spec, handled);

  const issuedAt = contents.issuedAt ?? (apiKey.status?.issuedAt ? new Date(apiKey.status.issuedAt) : now);
  const existing: CurrentKey = {
    key,
    keyId: keyId(key),
    issuedAt,
    expiresAt: addMs(issuedAt, spec.expiresAfterMs),
  };
  const kept = keptPrevious(contents, now);
  const { events, audit } = graceEnded(contents, kept, where);
  const reason = replacementReason(input, spec, existing, handled);
  // A key of another environment must not stay valid beside the new one.
  const parsed = parseKey(key);
  const sameEnvironment = parsed.ok && parsed.key.environment === spec.environment;
  const deferred = reason && sameEnvironment ? deferral(reason, existing, kept, now) : undefined;
  if (reason === undefined || deferred !== undefined) {
    return {
      current: existing,
      previous: kept,
      issueReason: contents.issueReason ?? 'Issue',
      rotateHandled: handled,
      revokedKeyId: undefined,
      replaced: undefined,
      retired: [],
      events,
      audit,
      ...(deferred ? { deferred } : {}),
    };
  }
  const current = newKey(spec, now, config);
  const previous = sameEnvironment ? graceFor(existing, spec, now) : undefined;
  const grace = previous ? `; key ${existing.keyId} stays valid until ${at(previous.expiresAt)}` : '';
  if (now >= existing.expiresAt) {
    const note = `key ${existing.keyId} expired at ${at(existing.expiresAt)} before it was rotated`;
    events.push({ type: 'Warning', reason: Reason.Expired, action: 'Rotate', note });
  }
  const note = `rotated key ${existing.keyId} to ${current.keyId} because ${ROTATION_NOTES[reason]}${grace}`;
  events.push({
    type: 'Normal',
    reason: reason === 'SpecChange' ? Reason.Reissued : Reason.Rotated,
    action: 'Rotate',
    note,
  });
  audit.push({
    action: reason === 'SpecChange' ? 'reissued' : 'rotated',
    reason,
    keyId: current.keyId,
    previousKeyId: existing.keyId,
    message: note,
  });
  return {
    current,
    previous,
    issueReason: reason,
    rotateHandled: rotateRequestOf(apiKey) ?? handled,
    revokedKeyId: undefined,
    replaced: reason,
    retired: [retiredEntry(existing.keyId, at(existing.issuedAt), now, reason)],
    events,
    audit,
  };
}

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

type Ownership = 'missing' | 'owned' | 'adoptable' | 'foreign';

/** How to bring the Secret to `manifest`, if it is not there already. */
function planSecret(
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

const RETIRE_REASONS: readonly string[] = ['Expiry', 'Schedule', 'Manual', 'Drift', 'Revoked', 'SpecChange'];

/**
 * A status that lags the Secret (the status write after a rotation was lost in a crash) catches up:
 * the Secret says which key replaced which and why, so the history and count come out as if the
 * status write had happened. Nothing is rotated again.
 */
function catchUp(
  apiKey: ApiKey,
  choice: KeyChoice,
  contents: SecretContents | undefined,
): { retired: HistoryEntry[]; count: number } {
  const statusKeyId = apiKey.status?.keyId;
  const current = choice.current;
  if (
    choice.replaced !== undefined ||
    current === undefined ||
    statusKeyId === undefined ||
    statusKeyId === current.keyId
  ) {
    return { retired: [], count: 0 };
  }
  const reason = contents?.issueReason;
  if (contents?.previousKeyId !== statusKeyId && !(reason !== undefined && RETIRE_REASONS.includes(reason))) {
    return { retired: [], count: 0 };
  }
  const retireReason = (
    reason !== undefined && RETIRE_REASONS.includes(reason) ? reason : 'Expiry'
  ) as RetireReason;
  return {
    retired: [retiredEntry(statusKeyId, apiKey.status?.issuedAt, current.issuedAt, retireReason)],
    count: 1,
  };
}

function nextStatus(
  input: DecideInput,
  spec: ResolvedSpec,
  choice: KeyChoice,
  retired: HistoryEntry[],
  extraCount: number,
  keySequence: number,
): ApiKeyStatus {
  const { apiKey, now, config } = input;
  const generation = apiKey.metadata.generation;
  const previousStatus = apiKey.status ?? {};
  const history = withHistory(previousStatus.history, retired);
  const rotationCount =
    (previousStatus.rotationCount ?? 0) +
    (choice.replaced !== undefined && choice.replaced !== 'Revoked' ? 1 : 0) +
    extraCount;
  const common: ApiKeyStatus = {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    secretName: spec.secretName,
    rotationCount,
    keySequence,
    ...(choice.rotateHandled === undefined ? {} : { lastRotateRequest: choice.rotateHandled }),
    ...(history.length > 0 ? { history } : {}),
  };
  // Conditions other than Ready describe a failing rotation: a decision that goes through clears them.
  const readyOnly = previousStatus.conditions?.filter((condition) => condition.type === READY);
  const { current, previous } = choice;
  if (current === undefined) {
    const why = spec.revocationReason ? ` (${spec.revocationReason})` : '';
    const message = `key ${choice.revokedKeyId ?? '(none)'} was revoked${why}; set spec.revoked to false to issue a new key`;
    return {
      ...common,
      conditions: setCondition(
        readyOnly,
        { type: READY, status: 'False', reason: Reason.Revoked, message },
        now,
        generation,
      ),
    };
  }
  const due = dueTimes(spec, current, apiKey.metadata.uid, config.rotationJitterMs ?? 0, minInterval(config));
  const message = `key ${current.keyId} is in Secret ${spec.secretName} and valid until ${at(current.expiresAt)}`;
  const ready = setCondition(
    readyOnly,
    { type: READY, status: 'True', reason: Reason.KeyIssued, message },
    now,
    generation,
  );
  const { deferred } = choice;
  return {
    ...common,
    keyId: current.keyId,
    issuedAt: at(current.issuedAt),
    expiresAt: at(current.expiresAt),
    nextRotationAt: at(deferred?.until ?? due.nextRotationAt),
    ...(previous === undefined ? {} : { previousKeyId: previous.keyId, graceEndsAt: at(previous.expiresAt) }),
    conditions:
      deferred === undefined
        ? ready
        : setCondition(
            // Kept from the status before, so its transition time says when the deferral began.
            [...ready, ...(previousStatus.conditions ?? []).filter((c) => c.type === ROTATION_DEFERRED)],
            {
              type: ROTATION_DEFERRED,
              status: 'True',
              reason: Reason.GracePeriod,
              message: deferred.message,
            },
            now,
            generation,
          ),
  };
}

/**
 * What to remove before the apply: parts someone else added, and rendered parts no longer wanted, as
 * keyrotor's sealed record names them (or, on a tampered Secret, as it claims: key material errs out).
 */
function toStrip(secret: SecretLike | undefined, manifest: SecretManifest, observed: Observed): string[] {
  const recorded = observed.trusted?.renderedNames ?? observed.tampered?.raw.renderedNames ?? [];
  const stale = staleRenderedParts(recorded, secret?.data, manifest.data);
  return [...new Set([...(observed.ignored ?? []), ...stale])];
}

/**
 * The status without the conditions other keyrotor controllers apply under their own field managers
 * (MountGuard, RestartTargetsReady): the ApiKey controller's apply leaves them be, so compared with
 * them every reconcile would see a change and write the status again.
 */
function withoutOthersConditions(status: ApiKeyStatus): ApiKeyStatus {
  if (status.conditions === undefined) return status;
  const others = [MOUNT_GUARD, RESTART_TARGETS_READY];
  return { ...status, conditions: status.conditions.filter((condition) => !others.includes(condition.type)) };
}

/** An owned Secret's contents as far as they can be believed (reconcile/trust.ts). */
function observe(input: DecideInput, ownership: Ownership): Observed {
  if (ownership !== 'owned' || input.secret === undefined) return {};
  const trust = trustSecret(input.apiKey, input.secret, input.config.sealKey);
  if (trust.kind === 'tampered') return { tampered: { why: trust.why, raw: trust.contents } };
  return { trusted: trust.contents, ignored: trust.kind === 'sealed' ? trust.ignored : [] };
}

/** Whose Secret it is: none yet, this ApiKey's, someone else's that may be adopted, or someone else's. */
function ownershipOf(secret: SecretLike | undefined, apiKey: ApiKey): Ownership {
  if (secret === undefined) return 'missing';
  if (isControlledBy(secret, apiKey)) return 'owned';
  // Another ApiKey's Secret is never adoptable: whoever may annotate it must not hand its key over.
  const ownedByAnApiKey = (secret.metadata?.ownerReferences ?? []).some(
    (ref) => ref.controller === true && ref.kind === KIND,
  );
  if (ownedByAnApiKey) return 'foreign';
  return secret.metadata?.annotations?.[ANNOTATION_ADOPT] === 'true' ? 'adoptable' : 'foreign';
}

/** What an owned Secret holds that keyrotor can believe, or why it believes none of it. */
type Observed =
  | { readonly trusted: SecretContents; readonly ignored: readonly string[]; readonly tampered?: undefined }
  | {
      readonly trusted?: undefined;
      readonly ignored?: undefined;
      readonly tampered: { readonly why: string; readonly raw: SecretContents };
    }
  | { readonly trusted?: undefined; readonly ignored?: undefined; readonly tampered?: undefined };

function chooseKey(
  input: DecideInput,
  spec: ResolvedSpec,
  ownership: Ownership,
  observed: Observed,
): KeyChoice {
  const { trusted, tampered } = observed;
  if (spec.revoked) {
    // Whatever the Secret says, it ends up holding no key; the ids recorded are keyrotor's own.
    return revoke(
      input,
      spec,
      trusted ??
        (tampered && { ...tampered.raw, keyId: input.apiKey.status?.keyId, revokedKeyId: undefined }),
    );
  }
  if (tampered !== undefined) {
    return replaceUntrusted(input, spec, input.apiKey.status?.lastRotateRequest, tampered.why);
  }
  if (trusted === undefined || (trusted.key === undefined && trusted.revokedKeyId !== undefined)) {
    return issueFresh(input, spec, trusted, ownership === 'adoptable');
  }
  return chooseForExisting(input, spec, trusted);
}

/** The key sequence after this choice: one more than any seen when the key changes. */
function sequenceAfter(apiKey: ApiKey, trusted: SecretContents | undefined, choice: KeyChoice): number {
  const base = Math.max(trusted?.sequence ?? 0, apiKey.status?.keySequence ?? 0);
  const before = trusted?.key === undefined ? undefined : keyId(trusted.key);
  const unchanged =
    trusted !== undefined && before === choice.current?.keyId && trusted.revokedKeyId === choice.revokedKeyId;
  return unchanged ? base : base + 1;
}

/** Ready=False when the key's issuer does not exist or does not permit it; undefined when it may be issued. */
function issuerRefusal(input: DecideInput, spec: ResolvedSpec): Plan | undefined {
  const { apiKey } = input;
  // A revocation needs no one's permission: it must work even when the issuer is gone or refuses.
  if (spec.revoked || apiKey.spec.issuerRef === undefined) return undefined;
  const context = input.issuer ?? { issuer: undefined, namespaceLabels: {} };
  const admission = admit(apiKey, spec, context.issuer, context.namespaceLabels);
  if (admission.permitted) return undefined;
  const keyId = apiKey.status?.keyId;
  const kept = keyId
    ? `; key ${keyId} stays in the Secret, but the issuer's verifier no longer lists it`
    : '';
  return refuse(input, admission.reason, `${admission.message}${kept}`, 'not-permitted', undefined);
}

/**
 * Ready=False when the namespace's environment label forbids this key (reconcile/environment.ts). The
 * key in the Secret is kept, as it is, but no key is issued or rotated, and no verifier lists it (ADR
 * 0003). A revocation is never held back by it.
 */
function environmentRefusal(input: DecideInput, spec: ResolvedSpec): Plan | undefined {
  const { apiKey, config } = input;
  if (spec.revoked) return undefined;
  const labels = input.namespaceLabels ?? input.issuer?.namespaceLabels ?? {};
  const required = config.requireEnvironmentLabel === true;
  const problem = environmentProblem(apiKey.metadata.namespace, labels, spec.environment, required);
  if (problem === undefined) return undefined;
  const keyIdNow = apiKey.status?.keyId;
  const verifier =
    apiKey.spec.issuerRef === undefined ? '' : ", and the issuer's verifier no longer lists it";
  const kept = keyIdNow ? `; key ${keyIdNow} stays in the Secret but is not rotated${verifier}` : '';
  const message = `${problem.message}; until that is fixed no key is issued or rotated${kept}`;
  return refuse(input, Reason.EnvironmentMismatch, message, 'not-permitted', undefined);
}

/** Ready=False before anything is issued: the namespace's environment first, then the issuer. */
function refusalOf(input: DecideInput, spec: ResolvedSpec): Plan | undefined {
  return environmentRefusal(input, spec) ?? issuerRefusal(input, spec);
}

/**
 * The spec to act on, or the InvalidSpec refusal. Revocation comes before every other check: a spec
 * keyrotor cannot honour (nor an issuer that refuses or is gone) never keeps a revoked key in its Secret.
 */
function specOrRefusal(input: DecideInput): ResolvedSpec | { refusal: Plan } {
  const { apiKey, now } = input;
  const resolved = resolveSpec(apiKey, now, input.config.allowedReplicatorKeys);
  if (resolved.ok) return resolved.spec;
  if (apiKey.spec.revoked === true) return revocationSpec(apiKey);
  const keyIdNow = apiKey.status?.keyId;
  const kept = keyIdNow ? `; key ${keyIdNow} is unchanged and still valid` : '';
  const message = `the spec is invalid: ${resolved.message}${kept}`;
  return { refusal: refuse(input, Reason.InvalidSpec, message, 'rejected-spec', undefined) };
}

/**
 * The whole decision for one ApiKey: what its Secret and status should hold, which events and audit
 * lines record the step, and when to look again. Pure: same input, same plan (given the key source).
 */
export function decide(input: DecideInput): Plan {
  const { apiKey, secret, now } = input;
  const previousStatus = apiKey.status ?? {};
  // Deleting: the garbage collector removes the Secret with its owner.
  if (apiKey.metadata.deletionTimestamp !== undefined) return { ...NOTHING, status: previousStatus };

  const spec = specOrRefusal(input);
  if ('refusal' in spec) return spec.refusal;
  const refusal = refusalOf(input, spec);
  if (refusal !== undefined) return refusal;
  const ownership = ownershipOf(secret, apiKey);
  if (ownership === 'foreign') {
    const message =
      `Secret ${spec.secretName} already exists and is not managed by this ApiKey, so keyrotor will not overwrite it. ` +
      `Delete it, set another spec.secretName on a new ApiKey, or annotate the Secret ${ANNOTATION_ADOPT}=true to let keyrotor replace its contents`;
    return refuse(
      input,
      Reason.SecretConflict,
      message,
      'conflict',
      input.config.conflictRecheckMs ?? CONFLICT_RECHECK_MS,
    );
  }

  const observed = observe(input, ownership);
  const contents = observed.trusted;
  const choice = chooseKey(input, spec, ownership, observed);
  const sequence = sequenceAfter(apiKey, contents, choice);
  const manifest = desiredSecret(apiKey, spec, { ...choice, sequence }, input.config.sealKey);
  const secretPlan = planSecret(input, manifest, choice, ownership, toStrip(secret, manifest, observed));
  const recovered = catchUp(apiKey, choice, contents);
  const audit = [...choice.audit, ...secretPlan.audit];
  const deferralEvents: PlannedEvent[] = [];
  const wasDeferred = findCondition(previousStatus.conditions, ROTATION_DEFERRED);
  if (choice.deferred !== undefined && wasDeferred?.message !== truncateMessage(choice.deferred.message)) {
    const note = choice.deferred.message;
    deferralEvents.push({ type: 'Normal', reason: Reason.RotationDeferred, action: 'Rotate', note });
  }
  if (recovered.retired.length > 0 && choice.current) {
    const message = `status caught up with key ${choice.current.keyId} in Secret ${spec.secretName}`;
    audit.push({ action: 'recovered', reason: Reason.KeyIssued, keyId: choice.current.keyId, message });
  }
  const status = nextStatus(
    input,
    spec,
    choice,
    [...choice.retired, ...recovered.retired],
    recovered.count,
    sequence,
  );
  const wakeAt =
    choice.current === undefined
      ? Infinity
      : Math.min(
          new Date(status.nextRotationAt ?? 0).getTime(),
          choice.previous?.expiresAt.getTime() ?? Infinity,
        );
  const replacedHeldKey = choice.replaced !== undefined && choice.replaced !== 'Revoked';
  return {
    secretWrite: secretPlan.write,
    status,
    statusChanged: stableJson(status) !== stableJson(withoutOthersConditions(previousStatus)),
    events: [...choice.events, ...deferralEvents, ...secretPlan.events],
    audit,
    requeueAfterMs: Number.isFinite(wakeAt) ? Math.max(wakeAt - now.getTime(), 1_000) : undefined,
    replaced: choice.replaced,
    restart: replacedHeldKey || choice.replaced === 'Revoked' ? spec.restartTargets : [],
  };
}
