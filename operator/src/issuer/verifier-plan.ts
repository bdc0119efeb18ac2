import {
  ISSUER_KIND,
  LABEL_ISSUER,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  VERIFIER_SECRET_TYPE,
} from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer, ApiKeyIssuerStatus } from '../api/types.ts';
import { keyHash } from '../keys/format.ts';
import { READY, findCondition, setCondition, type ConditionUpdate } from '../reconcile/conditions.ts';
import type { PlannedEvent } from '../reconcile/decide.ts';
import { controllerReference } from '../reconcile/owner.ts';
import { Reason } from '../reconcile/reasons.ts';
import { isControlledBy, readSecret, type SecretLike, type SecretManifest } from '../reconcile/secret.ts';
import { resolveSpec } from '../reconcile/spec.ts';
import { stableJson } from '../reconcile/stable-json.ts';
import {
  VERIFIER_API_VERSION,
  VERIFIER_FILE,
  parseVerifierDocument,
  type VerifierDocument,
  type VerifierEntry,
} from '../verify/document.ts';
import { admit, issuerName } from './admission.ts';

/**
 * The API server refuses a Secret whose data exceeds 1 MiB; a little is kept back for the JSON that
 * varies in length between revisions. At about 300 bytes an entry, one issuer holds some 3,000 keys.
 */
export const MAX_VERIFIER_BYTES = 1024 * 1024 - 4096;

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

/**
 * The verifier entries of one ApiKey: its current key and, during its grace period, the previous one,
 * each valid until the Secret says it stops being served. A key being deleted, revoked, refused by the
 * issuer, expired, or not (or no longer) matching its id gets none. An ApiKey whose spec the controller
 * cannot read keeps the entries it had, as its key keeps working in the Secret.
 */
export function entriesFor(
  consumer: Consumer,
  issuer: ApiKeyIssuer,
  namespaceLabels: Readonly<Record<string, string>>,
  listed: readonly VerifierEntry[],
  now: Date,
): { entries: VerifierEntry[]; standing: Standing } {
  const { apiKey, secret } = consumer;
  if (apiKey.metadata.deletionTimestamp !== undefined || !referencesIssuer(apiKey, issuer)) {
    return { entries: [], standing: 'none' };
  }
  const stillValid = (entry: VerifierEntry) => Date.parse(entry.notAfter) > now.getTime();
  const resolved = resolveSpec(apiKey, now);
  if (!resolved.ok) return { entries: listed.filter(stillValid), standing: 'permitted' };
  const spec = resolved.spec;
  if (spec.revoked) return { entries: [], standing: 'none' };
  if (!admit(apiKey, spec, issuer, namespaceLabels).permitted) return { entries: [], standing: 'refused' };
  if (secret === undefined || !isControlledBy(secret, apiKey)) return { entries: [], standing: 'permitted' };

  const contents = readSecret(secret);
  const { namespace, name } = apiKey.metadata;
  const about = { scopes: spec.scopes, environment: spec.environment, consumer: { namespace, name } };
  const entries: VerifierEntry[] = [];
  const add = (
    key: string | undefined,
    id: string | undefined,
    notBefore: Date,
    notAfter: Date | undefined,
  ) => {
    if (key === undefined || notAfter === undefined || notAfter.getTime() <= now.getTime()) return;
    const sha256 = keyHash(key);
    if (sha256.slice(0, 16) !== id) return;
    entries.push({
      keyId: id,
      sha256,
      ...about,
      // The key is in its Secret now, so it is valid from now at the latest (whatever another replica's
      // clock said when it was issued); this also keeps notBefore before notAfter, as readers require.
      notBefore: new Date(Math.min(notBefore.getTime(), now.getTime())).toISOString(),
      notAfter: notAfter.toISOString(),
    });
  };
  const issuedAt = contents.issuedAt ?? now;
  add(contents.key, contents.keyId, issuedAt, contents.expiresAt);
  // The Secret does not record when the previous key was issued; the status history usually does, and
  // otherwise it was at the latest when the current key was.
  const previousIssuedAt = apiKey.status?.history?.find(
    (entry) => entry.keyId === contents.previousKeyId,
  )?.issuedAt;
  add(
    contents.previousKey,
    contents.previousKeyId,
    previousIssuedAt === undefined ? issuedAt : new Date(previousIssuedAt),
    contents.previousExpiresAt,
  );
  return { entries, standing: 'permitted' };
}

function verifierManifest(
  issuer: ApiKeyIssuer,
  document: VerifierDocument,
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
    data: { [VERIFIER_FILE]: Buffer.from(JSON.stringify(document), 'utf8').toString('base64') },
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

/** Every consumer's entries, sorted by key id, and how many consumers are permitted and refused. */
function collectKeys(input: VerifierInput, current: VerifierDocument | undefined) {
  const listed = listedByConsumer(current);
  const keys: VerifierEntry[] = [];
  const seen = new Set<string>();
  let permitted = 0;
  let refused = 0;
  for (const consumer of input.consumers) {
    const { namespace, name } = consumer.apiKey.metadata;
    const labels = input.namespaceLabels(namespace);
    const was = listed.get(consumerKey({ namespace, name })) ?? [];
    const result = entriesFor(consumer, input.issuer, labels, was, input.now);
    // Readers refuse a document that lists a key twice (two Secrets holding one key, by a copy): the first wins.
    for (const entry of result.entries) {
      if (!seen.has(entry.keyId)) keys.push(entry);
      seen.add(entry.keyId);
    }
    if (result.standing === 'permitted') permitted += 1;
    else if (result.standing === 'refused') refused += 1;
  }
  keys.sort((a, b) => a.keyId.localeCompare(b.keyId));
  return { keys, counts: { activeKeys: keys.length, consumers: permitted, refusedKeys: refused } };
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
  const isNew = before?.reason !== reason || before.message !== message;
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
 * What the issuer's verifier Secret should hold and what its status should say. Pure: the controller
 * feeds it the caches and writes what it returns.
 */
export function planVerifier(input: VerifierInput): VerifierPlan {
  const { issuer, now, verifierSecret } = input;
  const secretName = verifierSecretNameOf(issuer);
  if (verifierSecret !== undefined && !isControlledBy(verifierSecret, issuer, ISSUER_KIND)) {
    const message = `Secret ${secretName} already exists and is not this issuer's verifier, so keyrotor will not overwrite it: delete it or set another spec.verifierSecretName`;
    return unwritable(input, Reason.VerifierConflict, message, {}, undefined);
  }

  const current = readVerifierDocument(verifierSecret);
  const { keys, counts } = collectKeys(input, current);
  // Plain JSON: entries are built in one field order, and a stored document in any other order was
  // written by someone else, so rewriting it is right. (Sorting every object's fields doubled the cost.)
  const unchanged = current !== undefined && JSON.stringify(current.keys) === JSON.stringify(keys);
  const revision = unchanged ? current.revision : (current?.revision ?? 0) + 1;
  const document: VerifierDocument = {
    apiVersion: VERIFIER_API_VERSION,
    issuer: issuerName(issuer),
    revision,
    keys,
  };
  const nextEnd = keys.reduce((soonest, entry) => Math.min(soonest, Date.parse(entry.notAfter)), Infinity);
  const requeueAfterMs = Number.isFinite(nextEnd) ? Math.max(nextEnd - now.getTime(), 1_000) : undefined;

  const size = Buffer.byteLength(JSON.stringify(document));
  if (size > MAX_VERIFIER_BYTES) {
    const message = `the verifier document for ${keys.length} keys would be ${size} bytes, more than a Secret holds (${MAX_VERIFIER_BYTES}); Secret ${secretName} keeps revision ${current?.revision ?? 0}. Split the consumers over more issuers`;
    return unwritable(input, Reason.VerifierTooLarge, message, counts, requeueAfterMs);
  }

  const needsWrite =
    !unchanged ||
    current.issuer !== document.issuer ||
    verifierSecret === undefined ||
    metadataDrifted(verifierSecret, issuer);
  const message = `Secret ${secretName} lists the keys of every ApiKey this issuer permits`;
  const status = issuerStatus(
    issuer,
    { type: READY, status: 'True', reason: Reason.VerifierUpToDate, message },
    { ...counts, verifierRevision: revision },
    now,
  );
  return {
    write: needsWrite
      ? verifierManifest(issuer, document, verifierSecret?.metadata?.resourceVersion)
      : undefined,
    change: needsWrite ? changeOf(current, document) : undefined,
    status,
    statusChanged: stableJson(status) !== stableJson(issuer.status ?? {}),
    events: [],
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
