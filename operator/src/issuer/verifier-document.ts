// The verifier document: read from its Secret, and the next one built from every consumer's entries,
// within one Secret's size (what does not fit is held back; removals never are).
import type { ApiKeyIssuer, ApiKeyIssuerStatus } from '../api/types.ts';
import { issuerName } from '../reconcile/admission.ts';
import { findCondition, READY, truncateMessage } from '../reconcile/conditions.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { stableJson } from '../reconcile/stable-json.ts';
import {
  parseVerifierDocument,
  VERIFIER_API_VERSION,
  VERIFIER_FILE,
  type VerifierDocument,
  type VerifierEntry,
} from '../verify/document.ts';
import { type Consumer, consumerKey, entriesFor, entryProblem, timeProblem } from './verifier-entries.ts';
import type { VerifierPlan } from './verifier-plan.ts';
import { holdsExactly, issuerStatus } from './verifier-secret.ts';

/**
 * The API server refuses a Secret whose data exceeds 1 MiB; a little is kept back for the JSON that
 * varies in length between revisions. At about 300 bytes an entry, one issuer holds some 3,000 keys.
 */
export const MAX_VERIFIER_BYTES = 1024 * 1024 - 4096;

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

/** Ready=False, the verifier left as it is; the Warning is sent when the problem starts or changes. */
export function unwritable(
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

export function changeOf(current: VerifierDocument | undefined, next: VerifierDocument): VerifierChange {
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
export function readableDocument(
  input: VerifierInput,
  current: VerifierDocument | undefined,
  maxBytes: number,
) {
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
