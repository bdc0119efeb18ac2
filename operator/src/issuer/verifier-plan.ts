import {
  ISSUER_KIND,
  LABEL_ISSUER,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  VERIFIER_SECRET_TYPE,
} from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer, ApiKeyIssuerStatus, Environment } from '../api/types.ts';
import { keyHash } from '../keys/format.ts';
import {
  READY,
  findCondition,
  setCondition,
  truncateMessage,
  type ConditionUpdate,
} from '../reconcile/conditions.ts';
import type { PlannedEvent } from '../reconcile/planned.ts';
import { environmentProblem } from '../reconcile/environment.ts';
import { controllerReference } from '../reconcile/owner.ts';
import { Reason } from '../reconcile/reasons.ts';
import { isControlledBy, type SecretLike, type SecretManifest } from '../reconcile/secret.ts';
import { resolveSpec } from '../reconcile/spec.ts';
import { stableJson } from '../reconcile/stable-json.ts';
import { trustSecret } from '../reconcile/trust.ts';
import {
  VERIFIER_API_VERSION,
  VERIFIER_FILE,
  parseVerifierDocument,
  type VerifierDocument,
  type VerifierEntry,
} from '../verify/document.ts';
import { admit, issuerName } from '../reconcile/admission.ts';

/**
 * The API server refuses a Secret whose data exceeds 1 MiB; a little is kept back for the JSON that
 * varies in length between revisions. At about 300 bytes an entry, one issuer holds some 3,000 keys.
 */
export const MAX_VERIFIER_BYTES = 1024 * 1024 - 4096;

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

export interface VerifierInput {
  readonly issuer: ApiKeyIssuer;
  /** The ApiKeys whose issuerRef names this issuer, each with its Secret. */
  readonly consumers: readonly Consumer[];
  readonly namespaceLabels: (namespace: string) => Readonly<Record<string, string>>;
  /** The verifier Secret as last observed. */
  readonly verifierSecret: SecretLike | undefined;
  readonly now: Date;
  /** The key keyrotor seals key Secrets with: a consumer's Secret counts only when its seal matches. */
  readonly sealKey: Uint8Array;
  /** The largest document written, in bytes of JSON; default MAX_VERIFIER_BYTES. */
  readonly maxBytes?: number;
}

export interface VerifierChange {
  readonly revision: number;
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

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

export const verifierSecretNameOf = (issuer: ApiKeyIssuer) =>
  issuer.spec.verifierSecretName ?? `${issuer.metadata.name}-verifier`;

const consumerKey = (consumer: { namespace: string; name: string }) =>
  `${consumer.namespace}/${consumer.name}`;

/** The document a verifier Secret holds, or undefined when it holds none that parses. */
export function readVerifierDocument(secret: SecretLike | undefined): VerifierDocument | undefined {
  const data = secret?.data?.[VERIFIER_FILE];
  if (data === undefined) return undefined;
  try {
    return parseVerifierDocument(Buffer.from(data, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

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

function verifierManifest(
  issuer: ApiKeyIssuer,
  text: string,
  resourceVersion: string | undefined,
): SecretManifest {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: verifierSecretNameOf(issuer),
      namespace: issuer.metadata.namespace,
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_ISSUER]: issuer.metadata.name },
      annotations: {},
      ownerReferences: [controllerReference(issuer, ISSUER_KIND)],
    },
    type: VERIFIER_SECRET_TYPE,
    data: { [VERIFIER_FILE]: Buffer.from(text, 'utf8').toString('base64') },
  };
}

function metadataDrifted(observed: SecretLike, issuer: ApiKeyIssuer): boolean {
  const labels = observed.metadata?.labels ?? {};
  return (
    labels[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE ||
    labels[LABEL_ISSUER] !== issuer.metadata.name ||
    observed.type !== VERIFIER_SECRET_TYPE
  );
}

/** A verifier document's entries by consumer ApiKey ("namespace/name"). */
export function listedByConsumer(document: VerifierDocument | undefined): Map<string, VerifierEntry[]> {
  const byConsumer = new Map<string, VerifierEntry[]>();
  for (const entry of document?.keys ?? []) {
    const key = consumerKey(entry.consumer);
    byConsumer.set(key, [...(byConsumer.get(key) ?? []), entry]);
  }
  return byConsumer;
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
function timeProblem(entry: VerifierEntry, now: Date): string | undefined {
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

/**
 * Every consumer's entries that a reader accepts, sorted by key id; how many consumers are permitted
 * and refused; and how many entries were dropped because they could not be written.
 */
function collectKeys(input: VerifierInput, current: VerifierDocument | undefined, thorough = false) {
  const listed = listedByConsumer(current);
  const keys: VerifierEntry[] = [];
  const seen = new Set<string>();
  let permitted = 0;
  let refused = 0;
  let invalid = 0;
  for (const consumer of input.consumers) {
    const { namespace, name } = consumer.apiKey.metadata;
    const labels = input.namespaceLabels(namespace);
    const was = listed.get(consumerKey({ namespace, name })) ?? [];
    const result = entriesFor(consumer, input.issuer, labels, was, input.now, input.sealKey);
    for (const entry of result.entries) {
      // One entry the reader would refuse would make the whole document unreadable for every API.
      if ((thorough ? entryProblem : timeProblem)(entry, input.now) !== undefined) {
        invalid += 1;
        continue;
      }
      // Readers refuse a document that lists a key twice (two Secrets holding one key, by a copy): the first wins.
      if (!seen.has(entry.keyId)) keys.push(entry);
      seen.add(entry.keyId);
    }
    if (result.standing === 'permitted') permitted += 1;
    else if (result.standing === 'refused') refused += 1;
  }
  keys.sort((a, b) => a.keyId.localeCompare(b.keyId));
  return { keys, invalid, counts: { consumers: permitted, refusedKeys: refused } };
}

/** The document's size in bytes of JSON, from its size without entries and each entry's. */
const byteLength = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/**
 * The entries that fit in `maxBytes`, when not all do. Removals are never held back: the document is
 * built from the entries still wanted. Those already listed come first (a key an API accepts now keeps
 * working), then new ones: rotated keys of consumers already listed before keys of new consumers,
 * oldest first. Whatever does not fit is held back until there is room.
 */
function fitting(
  keys: readonly VerifierEntry[],
  current: VerifierDocument | undefined,
  emptySize: number,
  maxBytes: number,
): { keys: VerifierEntry[]; heldBack: number; keptHeldBack: number } {
  const listedIds = new Set((current?.keys ?? []).map((entry) => entry.keyId));
  const listedConsumers = new Set((current?.keys ?? []).map((entry) => consumerKey(entry.consumer)));
  const kept = keys.filter((entry) => listedIds.has(entry.keyId));
  const additions = keys
    .filter((entry) => !listedIds.has(entry.keyId))
    .map((entry) => ({ entry, rank: listedConsumers.has(consumerKey(entry.consumer)) ? 0 : 1 }))
    .sort(
      (a, b) =>
        a.rank - b.rank ||
        Date.parse(a.entry.notBefore) - Date.parse(b.entry.notBefore) ||
        a.entry.keyId.localeCompare(b.entry.keyId),
    )
    .map(({ entry }) => entry);
  const chosen: VerifierEntry[] = [];
  let size = emptySize;
  let keptHeldBack = 0;
  let heldBack = 0;
  for (const [entry, wasListed] of [
    ...kept.map((entry) => [entry, true] as const),
    ...additions.map((entry) => [entry, false] as const),
  ]) {
    const grows = byteLength(entry) + (chosen.length === 0 ? 0 : 1);
    if (size + grows > maxBytes) {
      if (wasListed) keptHeldBack += 1;
      else heldBack += 1;
      continue;
    }
    chosen.push(entry);
    size += grows;
  }
  chosen.sort((a, b) => a.keyId.localeCompare(b.keyId));
  return { keys: chosen, heldBack, keptHeldBack };
}

function issuerStatus(
  issuer: ApiKeyIssuer,
  update: ConditionUpdate,
  fields: ApiKeyIssuerStatus,
  now: Date,
): ApiKeyIssuerStatus {
  const previous = issuer.status ?? {};
  const generation = issuer.metadata.generation;
  return {
    ...previous,
    ...fields,
    verifierSecretName: verifierSecretNameOf(issuer),
    conditions: setCondition(previous.conditions, update, now, generation),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
}

/** Ready=False, the verifier left as it is; the Warning is sent when the problem starts or changes. */
function unwritable(
  input: VerifierInput,
  reason: string,
  message: string,
  fields: ApiKeyIssuerStatus,
  requeueAfterMs: number | undefined,
): VerifierPlan {
  const previous = input.issuer.status ?? {};
  const before = findCondition(previous.conditions, READY);
  const status = issuerStatus(
    input.issuer,
    { type: READY, status: 'False', reason, message },
    fields,
    input.now,
  );
  const isNew = before?.reason !== reason || before.message !== truncateMessage(message);
  return {
    write: undefined,
    change: undefined,
    status,
    statusChanged: stableJson(status) !== stableJson(previous),
    events: isNew ? [{ type: 'Warning', reason, action: 'WriteVerifier', note: message }] : [],
    requeueAfterMs,
  };
}

function changeOf(current: VerifierDocument | undefined, next: VerifierDocument): VerifierChange {
  const listed = new Set((current?.keys ?? []).map((entry) => entry.keyId));
  const kept = new Set(next.keys.map((entry) => entry.keyId));
  return {
    revision: next.revision,
    added: [...kept].filter((id) => !listed.has(id)),
    removed: [...listed].filter((id) => !kept.has(id)),
  };
}

/**
 * The next document and its text, with the entries checked by their times; if the reader still
 * refuses it, built again with every entry checked by all of the reader's rules (`refused` then says
 * why it is still refused, which should not happen).
 */
function readableDocument(input: VerifierInput, current: VerifierDocument | undefined, maxBytes: number) {
  const build = (thorough: boolean) => {
    const collected = collectKeys(input, current, thorough);
    const next = nextDocument(input.issuer, current, collected.keys, maxBytes);
    const text = JSON.stringify(next.document);
    // The reader parsed the stored document already (readVerifierDocument): the same bytes need no
    // second look, and a rebuild that changes nothing (the common case) costs no parse.
    const stored = next.unchanged && holdsExactly(input.verifierSecret, input.issuer, text);
    return { collected, next, text, refused: stored ? undefined : refusal(text) };
  };
  const quick = build(false);
  return quick.refused === undefined ? quick : build(true);
}

/** Why keyrotor's own reader refuses the document, or undefined when it accepts it. */
function refusal(text: string): string | undefined {
  try {
    parseVerifierDocument(text);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The document to hold `wanted`, or as much of it as fits; unchanged when it is `current`. */
function nextDocument(
  issuer: ApiKeyIssuer,
  current: VerifierDocument | undefined,
  wanted: VerifierEntry[],
  maxBytes: number,
) {
  // A document restored after a deletion or an edit continues from the highest revision known (the
  // status remembers it), so readers that refuse an older revision take it.
  const lastRevision = Math.max(current?.revision ?? 0, issuer.status?.verifierRevision ?? 0);
  const shell = {
    apiVersion: VERIFIER_API_VERSION,
    issuer: issuerName(issuer),
    revision: lastRevision + 1,
  } as const;
  const fullSize = byteLength({ ...shell, keys: wanted });
  const fit =
    fullSize <= maxBytes
      ? { keys: wanted, heldBack: 0, keptHeldBack: 0 }
      : fitting(wanted, current, byteLength({ ...shell, keys: [] }), maxBytes);
  // Plain JSON: entries are built in one field order, and a stored document in any other order was
  // written by someone else, so rewriting it is right. (Sorting every object's fields doubled the cost.)
  const unchanged =
    current !== undefined &&
    current.revision === lastRevision &&
    JSON.stringify(current.keys) === JSON.stringify(fit.keys);
  const revision = unchanged ? lastRevision : lastRevision + 1;
  const document: VerifierDocument = { ...shell, revision, keys: fit.keys };
  return { document, unchanged, fit, fullSize };
}

/**
 * True when the verifier Secret holds exactly the bytes keyrotor would write, with its labels and
 * type: anything else (deleted, an edit by hand, even one that parses the same) is rewritten.
 */
function holdsExactly(verifierSecret: SecretLike | undefined, issuer: ApiKeyIssuer, text: string): boolean {
  const stored = verifierSecret?.data?.[VERIFIER_FILE];
  return (
    verifierSecret !== undefined &&
    stored !== undefined &&
    Buffer.from(stored, 'base64').toString('utf8') === text &&
    !metadataDrifted(verifierSecret, issuer)
  );
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
