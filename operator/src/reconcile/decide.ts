import { ANNOTATION_ADOPT } from '../api/names.ts';
import type { ApiKey, ApiKeyStatus } from '../api/types.ts';
import { keyId, parseKey, type KeyOptions } from '../keys/format.ts';
import type { AuditAction } from '../observability/audit.ts';
import { READY, findCondition, setCondition } from './conditions.ts';
import { Reason } from './reasons.ts';
import {
  desiredSecret,
  isControlledBy,
  readSecret,
  secretDrift,
  type CurrentKey,
  type PreviousKey,
  type SecretContents,
  type SecretLike,
  type SecretManifest,
} from './secret.ts';
import { resolveSpec, secretNameOf, type ResolvedSpec } from './spec.ts';

/** How long to wait before looking again at a Secret keyrotor may not touch (it is not watched). */
export const CONFLICT_RECHECK_MS = 60_000;

export interface DecideConfig {
  /** Makes a new key; the CSPRNG in production, a deterministic source in tests. */
  readonly generateKey: (options: KeyOptions) => string;
  /** How soon to look again at a Secret keyrotor may not touch; default CONFLICT_RECHECK_MS. */
  readonly conflictRecheckMs?: number;
}

export interface DecideInput {
  readonly apiKey: ApiKey;
  /** The Secret named by the spec as last observed, if it exists. */
  readonly secret: SecretLike | undefined;
  readonly now: Date;
  readonly config: DecideConfig;
}

export interface PlannedEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: Reason;
  /** What keyrotor did (events.k8s.io action), e.g. Issue, Rotate, Reconcile. */
  readonly action: string;
  readonly note: string;
}

export interface PlannedAudit {
  readonly action: AuditAction;
  readonly reason: Reason;
  readonly keyId?: string;
  readonly previousKeyId?: string;
  readonly message: string;
}

export type SecretWrite =
  /** Server-side apply; with metadata.resourceVersion set when it updates what was observed. */
  | { readonly kind: 'apply'; readonly manifest: SecretManifest }
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
}

function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => a.localeCompare(b)))
      : inner,
  );
}

const at = (time: Date) => time.toISOString();
const addMs = (time: Date, ms: number) => new Date(time.getTime() + ms);

/** Ready=False for a reason keyrotor cannot fix by itself; the Secret is left exactly as it is. */
function refuse(
  input: Pick<DecideInput, 'apiKey' | 'now'>,
  reason: Reason,
  message: string,
  audit: AuditAction,
  requeueAfterMs: number | undefined,
): Plan {
  const { apiKey, now } = input;
  const previous = apiKey.status ?? {};
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
  const isNew = before?.reason !== reason || before.message !== message || before.status !== 'False';
  return {
    secretWrite: undefined,
    status,
    statusChanged: stableJson(status) !== stableJson(previous),
    events: isNew ? [{ type: 'Warning', reason, action: 'Reconcile', note: message }] : [],
    audit: isNew
      ? [{ action: audit, reason, message, ...(previous.keyId ? { keyId: previous.keyId } : {}) }]
      : [],
    requeueAfterMs,
  };
}

interface KeyChoice {
  readonly current: CurrentKey;
  readonly previous: PreviousKey | undefined;
  /** The key in the Secret was replaced by this decision. */
  readonly replaced: boolean;
  readonly events: PlannedEvent[];
  readonly audit: PlannedAudit[];
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

/** A Secret that does not exist (or is being adopted): the first key, or a new one after a deletion. */
function chooseForMissing(input: DecideInput, spec: ResolvedSpec, adopting: boolean): KeyChoice {
  const { apiKey, now, config } = input;
  const current = newKey(spec, now, config);
  const lostKeyId = apiKey.status?.keyId;
  const where = `Secret ${spec.secretName}`;
  if (adopting) {
    const note = `adopted existing ${where} (annotated ${ANNOTATION_ADOPT}=true) and issued key ${current.keyId}`;
    return {
      current,
      previous: undefined,
      replaced: false,
      events: [{ type: 'Normal', reason: Reason.SecretAdopted, action: 'Issue', note }],
      audit: [{ action: 'adopted', reason: Reason.SecretAdopted, keyId: current.keyId, message: note }],
    };
  }
  if (lostKeyId !== undefined) {
    const note = `${where} was deleted; issued new key ${current.keyId} (key ${lostKeyId} is gone)`;
    return {
      current,
      previous: undefined,
      replaced: true,
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
    current,
    previous: undefined,
    replaced: false,
    events: [{ type: 'Normal', reason: Reason.Issued, action: 'Issue', note }],
    audit: [{ action: 'issued', reason: Reason.Issued, keyId: current.keyId, message: note }],
  };
}

function chooseForExisting(input: DecideInput, spec: ResolvedSpec, contents: SecretContents): KeyChoice {
  const { apiKey, now, config } = input;
  const where = `Secret ${spec.secretName}`;
  const key = trustedKey(contents);
  if (key === undefined) {
    const current = newKey(spec, now, config);
    const note = `key material in ${where} was changed outside keyrotor and is no longer trusted; issued new key ${current.keyId}`;
    return {
      current,
      previous: undefined,
      replaced: true,
      events: [{ type: 'Warning', reason: Reason.SecretTampered, action: 'Issue', note }],
      audit: [
        {
          action: 'replaced-tampered',
          reason: Reason.SecretTampered,
          keyId: current.keyId,
          ...(contents.keyId ? { previousKeyId: contents.keyId } : {}),
          message: note,
        },
      ],
    };
  }

  const issuedAt = contents.issuedAt ?? (apiKey.status?.issuedAt ? new Date(apiKey.status.issuedAt) : now);
  const existing: CurrentKey = {
    key,
    keyId: keyId(key),
    issuedAt,
    expiresAt: addMs(issuedAt, spec.expiresAfterMs),
  };
  const events: PlannedEvent[] = [];
  const audit: PlannedAudit[] = [];
  let previous = keptPrevious(contents, now);
  if (contents.previousKeyId !== undefined && previous === undefined) {
    const note = `previous key ${contents.previousKeyId} retired from ${where}: its grace period ended`;
    events.push({ type: 'Normal', reason: Reason.PreviousKeyRetired, action: 'Retire', note });
  }

  const parsed = parseKey(key);
  const formatChanged =
    parsed.ok &&
    (parsed.key.prefix !== spec.keyPrefix ||
      parsed.key.environment !== spec.environment ||
      parsed.key.bits !== spec.keyBits);
  const rotateAt = addMs(existing.expiresAt, -spec.rotateBeforeMs);
  if (!formatChanged && now < rotateAt) {
    return { current: existing, previous, replaced: false, events, audit };
  }

  const current = newKey(spec, now, config);
  // A key of another environment must not stay valid beside the new one.
  const sameEnvironment = parsed.ok && parsed.key.environment === spec.environment;
  previous = sameEnvironment ? graceFor(existing, spec, now) : undefined;
  const grace = previous ? `; key ${existing.keyId} stays valid until ${at(previous.expiresAt)}` : '';
  if (formatChanged) {
    const note = `the spec changed the key format (prefix, environment or bits); issued key ${current.keyId} in place of ${existing.keyId}${grace}`;
    events.push({ type: 'Normal', reason: Reason.Reissued, action: 'Rotate', note });
    audit.push({
      action: 'reissued',
      reason: Reason.Reissued,
      keyId: current.keyId,
      previousKeyId: existing.keyId,
      message: note,
    });
  } else {
    if (now >= existing.expiresAt) {
      const note = `key ${existing.keyId} expired at ${at(existing.expiresAt)} before it was rotated`;
      events.push({ type: 'Warning', reason: Reason.Expired, action: 'Rotate', note });
    }
    const note = `rotated key ${existing.keyId} (due ${at(rotateAt)}) to ${current.keyId}${grace}`;
    events.push({ type: 'Normal', reason: Reason.Rotated, action: 'Rotate', note });
    audit.push({
      action: 'rotated',
      reason: Reason.Rotated,
      keyId: current.keyId,
      previousKeyId: existing.keyId,
      message: note,
    });
  }
  return { current, previous, replaced: true, events, audit };
}

/** How long to wait before trying again a Secret the API server refused. */
export const REJECTED_RECHECK_MS = 300_000;

/**
 * The plan when the API server refused the Secret keyrotor wrote (an invalid template value, a
 * quota, a denied permission): Ready=False, once, and a look again later; the old key stays.
 */
export function refuseSecret(apiKey: ApiKey, now: Date, serverMessage: string): Plan {
  const kept = apiKey.status?.keyId ? `; key ${apiKey.status.keyId} is unchanged` : '';
  const message = `the API server refused Secret ${secretNameOf(apiKey)}: ${serverMessage}${kept}`;
  return refuse({ apiKey, now }, Reason.SecretRejected, message, 'rejected-secret', REJECTED_RECHECK_MS);
}

function withResourceVersion(manifest: SecretManifest, resourceVersion: string | undefined): SecretManifest {
  return resourceVersion === undefined
    ? manifest
    : { ...manifest, metadata: { ...manifest.metadata, resourceVersion } };
}

/**
 * The drift no decision of keyrotor's explains: a replaced key changes the data and the issued-at
 * annotation, and a grace period that ended removes the previous key; anything else was edited
 * outside keyrotor.
 */
function editsFromOutside(drift: readonly string[], replaced: boolean): string[] {
  const explained = (what: string) =>
    what.startsWith('data.previous-') || (replaced && (what.startsWith('data.') || what === 'annotations'));
  return drift.filter((what) => !explained(what));
}

interface SecretPlan {
  readonly write: SecretWrite | undefined;
  readonly events: PlannedEvent[];
  readonly audit: PlannedAudit[];
}

/** How to bring the Secret to `manifest`, if it is not there already. */
function planSecret(
  input: DecideInput,
  manifest: SecretManifest,
  choice: KeyChoice,
  owned: boolean,
): SecretPlan {
  const { apiKey, secret } = input;
  if (secret === undefined) return { write: { kind: 'apply', manifest }, events: [], audit: [] };
  if (!owned) {
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
  } else if (drift.length > 0) {
    // The resourceVersion makes the write fail if the Secret changed since it was observed.
    write = { kind: 'apply', manifest: withResourceVersion(manifest, secret.metadata?.resourceVersion) };
  }
  // Drift while the spec stood still was someone else's edit: say so. A spec change is not drift.
  const edits = editsFromOutside(drift, choice.replaced);
  if (apiKey.status?.observedGeneration !== apiKey.metadata.generation || edits.length === 0) {
    return { write, events: [], audit: [] };
  }
  const note = `restored ${edits.join(', ')} of Secret ${manifest.metadata.name}, changed outside keyrotor`;
  return {
    write,
    events: [{ type: 'Warning', reason: Reason.SecretDrifted, action: 'Reconcile', note }],
    audit: [{ action: 'restored', reason: Reason.SecretDrifted, keyId: choice.current.keyId, message: note }],
  };
}

function readyStatus(apiKey: ApiKey, spec: ResolvedSpec, choice: KeyChoice, now: Date): ApiKeyStatus {
  const { current } = choice;
  const generation = apiKey.metadata.generation;
  const message = `key ${current.keyId} is in Secret ${spec.secretName} and valid until ${at(current.expiresAt)}`;
  return {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    secretName: spec.secretName,
    keyId: current.keyId,
    issuedAt: at(current.issuedAt),
    expiresAt: at(current.expiresAt),
    nextRotationAt: at(addMs(current.expiresAt, -spec.rotateBeforeMs)),
    rotationCount: (apiKey.status?.rotationCount ?? 0) + (choice.replaced ? 1 : 0),
    conditions: setCondition(
      apiKey.status?.conditions,
      { type: READY, status: 'True', reason: Reason.KeyIssued, message },
      now,
      generation,
    ),
  };
}

/** Whose Secret it is: none yet, this ApiKey's, someone else's that may be adopted, or someone else's. */
function ownershipOf(
  secret: SecretLike | undefined,
  apiKey: ApiKey,
): 'missing' | 'owned' | 'adoptable' | 'foreign' {
  if (secret === undefined) return 'missing';
  if (isControlledBy(secret, apiKey)) return 'owned';
  return secret.metadata?.annotations?.[ANNOTATION_ADOPT] === 'true' ? 'adoptable' : 'foreign';
}

const NOTHING_TO_DO: Omit<Plan, 'status'> = {
  secretWrite: undefined,
  statusChanged: false,
  events: [],
  audit: [],
  requeueAfterMs: undefined,
};

/**
 * The whole decision for one ApiKey: what its Secret and status should hold, which events and audit
 * lines record the step, and when to look again. Pure: same input, same plan (given the key source).
 */
export function decide(input: DecideInput): Plan {
  const { apiKey, secret, now } = input;
  const previousStatus = apiKey.status ?? {};
  // Deleting: the garbage collector removes the Secret with its owner.
  if (apiKey.metadata.deletionTimestamp !== undefined) return { ...NOTHING_TO_DO, status: previousStatus };

  const resolved = resolveSpec(apiKey);
  if (!resolved.ok) {
    const kept = previousStatus.keyId ? `; key ${previousStatus.keyId} is unchanged and still valid` : '';
    return refuse(
      input,
      Reason.InvalidSpec,
      `the spec is invalid: ${resolved.message}${kept}`,
      'rejected-spec',
      undefined,
    );
  }
  const spec = resolved.spec;

  const ownership = ownershipOf(secret, apiKey);
  if (ownership === 'foreign') {
    const message =
      `Secret ${spec.secretName} already exists and is not managed by this ApiKey, so keyrotor will not overwrite it. ` +
      `Delete it, set another spec.secretName on a new ApiKey, or annotate the Secret ${ANNOTATION_ADOPT}=true to let keyrotor replace its contents`;
    const recheckMs = input.config.conflictRecheckMs ?? CONFLICT_RECHECK_MS;
    return refuse(input, Reason.SecretConflict, message, 'conflict', recheckMs);
  }
  const owned = ownership === 'owned';
  const choice =
    owned && secret !== undefined
      ? chooseForExisting(input, spec, readSecret(secret))
      : chooseForMissing(input, spec, ownership === 'adoptable');
  const secretPlan = planSecret(
    input,
    desiredSecret(apiKey, spec, choice.current, choice.previous),
    choice,
    owned,
  );
  const audit = [...choice.audit, ...secretPlan.audit];
  if (
    audit.length === 0 &&
    previousStatus.keyId !== undefined &&
    previousStatus.keyId !== choice.current.keyId
  ) {
    // The Secret is the source of truth: a status written before a crash (or not at all) catches up.
    const message = `status caught up with key ${choice.current.keyId} in Secret ${spec.secretName}`;
    audit.push({ action: 'recovered', reason: Reason.KeyIssued, keyId: choice.current.keyId, message });
  }
  const status = readyStatus(apiKey, spec, choice, now);
  const wakeAt = Math.min(
    new Date(status.nextRotationAt ?? 0).getTime(),
    choice.previous?.expiresAt.getTime() ?? Infinity,
  );
  return {
    secretWrite: secretPlan.write,
    status,
    statusChanged: stableJson(status) !== stableJson(previousStatus),
    events: [...choice.events, ...secretPlan.events],
    audit,
    requeueAfterMs: Math.max(wakeAt - now.getTime(), 1_000),
  };
}
