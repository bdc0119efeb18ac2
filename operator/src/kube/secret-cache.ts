import { Gauge, type Registry } from 'prom-client';

import {
  ANNOTATION_ADOPT,
  ANNOTATION_ISSUE_REASON,
  ANNOTATION_ISSUED_AT,
  ANNOTATION_KEY_SEQUENCE,
  ANNOTATION_RENDERED_DATA,
  ANNOTATION_REVOKED_KEY_ID,
  ANNOTATION_ROTATE_HANDLED,
  ANNOTATION_SEAL,
  DATA_API_KEY,
  DATA_EXPIRES_AT,
  DATA_KEY_ID,
  DATA_PREVIOUS_API_KEY,
  DATA_PREVIOUS_EXPIRES_AT,
  DATA_PREVIOUS_KEY_ID,
  DATA_SCOPES,
  GROUP,
  ISSUER_KIND,
  KIND,
  LABEL_API_KEY,
  LABEL_ISSUER,
  LABEL_MANAGED_BY,
  SECRET_TYPE,
  VERIFIER_SECRET_TYPE,
} from '../api/names.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { DIGEST_MARK, ownPart, partDigest, renderedNamesOf } from '../reconcile/secret-data.ts';
import { VERIFIER_FILE } from '../verify/document.ts';

// Anyone who may create Secrets in a watched namespace can give one keyrotor's label and type, so the
// Secret cache must not hold what such a Secret says beyond what keyrotor itself would write there:
// otherwise 500 Secrets of 1 MiB are 500 MiB of keyrotor's memory (keyrotor issue 16).

/**
 * The longest data or keyrotor annotation value kept (characters, base64 for data). The longest keyrotor
 * writes is `scopes`: 32 scopes of 64 characters, 2,079 bytes, 2,772 in base64; a key of 512 bits is
 * under 200. Anything longer is not keyrotor's.
 */
export const MAX_CACHED_VALUE_CHARS = 4096;
/** A verifier document is at most what a Secret holds (1 MiB), in base64. */
export const MAX_CACHED_VERIFIER_CHARS = Math.ceil((1024 * 1024) / 3) * 4;
/**
 * What an oversized value is kept as: present (so a keyrotor field someone planted is still seen and
 * stripped, and drift is still restored) but empty, which no seal, key id or document matches, so
 * trust.ts reads it as not keyrotor's.
 */
export const OVERSIZED = '';

const KEY_DATA = [
  DATA_API_KEY,
  DATA_KEY_ID,
  DATA_SCOPES,
  DATA_EXPIRES_AT,
  DATA_PREVIOUS_API_KEY,
  DATA_PREVIOUS_KEY_ID,
  DATA_PREVIOUS_EXPIRES_AT,
];
/** Every annotation keyrotor reads on a Secret (secret.ts, trust.ts, decide.ts). */
const KEYROTOR_ANNOTATIONS = [
  ANNOTATION_ISSUED_AT,
  ANNOTATION_ISSUE_REASON,
  ANNOTATION_ROTATE_HANDLED,
  ANNOTATION_REVOKED_KEY_ID,
  ANNOTATION_KEY_SEQUENCE,
  ANNOTATION_SEAL,
  ANNOTATION_ADOPT,
  ANNOTATION_RENDERED_DATA,
];
const KEYROTOR_LABELS = [LABEL_MANAGED_BY, LABEL_API_KEY, LABEL_ISSUER];

type OwnerReference = NonNullable<NonNullable<SecretLike['metadata']>['ownerReferences']>[number];

/** Only the named entries of `record`, each value capped (OVERSIZED beyond `max`); undefined if none. */
function pick(
  record: Readonly<Record<string, string>> | undefined,
  keys: readonly string[],
  max: number,
): Record<string, string> | undefined {
  if (record === undefined) return undefined;
  const kept: Record<string, string> = {};
  for (const key of keys) {
    const value = record[key];
    if (typeof value === 'string') kept[key] = value.length > max ? OVERSIZED : value;
  }
  return Object.keys(kept).length > 0 ? kept : undefined;
}

/** The annotations a secretTemplate may set: none under keyrotor.dev/ (the CRD refuses those). */
function templateAnnotations(annotations: Readonly<Record<string, string>> | undefined) {
  return Object.fromEntries(
    Object.entries(annotations ?? {}).filter(([key]) => !key.startsWith(`${GROUP}/`)),
  );
}

/**
 * The rendered parts the Secret's record names (at most 16), each as its digest: keyrotor only checks
 * them (seal and drift), so the cache holds neither key material nor the size of a planted value.
 */
function withRenderedDigests(
  kept: Record<string, string> | undefined,
  data: Readonly<Record<string, string>> | undefined,
  names: readonly string[] | undefined,
): Record<string, string> | undefined {
  const rendered = (names ?? []).filter(
    (name) => ownPart(data, name) !== undefined && !KEY_DATA.includes(name),
  );
  if (rendered.length === 0) return kept;
  const digests: Record<string, string> = {};
  for (const name of rendered) digests[name] = `${DIGEST_MARK}${partDigest(ownPart(data, name) ?? '')}`;
  return { ...kept, ...digests };
}

/** The controller reference, if a keyrotor kind's: the API server allows one per object, nothing else is read. */
function controllerOf(secret: SecretLike): OwnerReference | undefined {
  const ref = secret.metadata?.ownerReferences?.find((candidate) => candidate.controller === true);
  if (ref === undefined) return undefined;
  const { apiVersion, kind, name, uid } = ref;
  return { apiVersion, kind, name, uid, controller: true };
}

const isKeyrotorKind = (ref: OwnerReference | undefined, kind: string): boolean =>
  ref !== undefined && ref.kind === kind && ref.apiVersion.startsWith(`${GROUP}/`);

/**
 * What keyrotor's Secret cache keeps of a Secret (list and watch alike): the metadata it reads (never
 * managedFields), the type, and only the data keys keyrotor writes for that type, each capped in size.
 * The labels and annotations of a secretTemplate are kept only on a Secret an ApiKey controls (the
 * drift check compares them there, and nowhere else); elsewhere only keyrotor's own. A verifier
 * document is kept only on a Secret an ApiKeyIssuer controls. Never throws: the client's watch drops
 * an event whose handler throws.
 */
export function cachedSecretView<T extends SecretLike>(secret: T): T {
  const metadata = secret.metadata ?? {};
  const controller = controllerOf(secret);
  const templated = isKeyrotorKind(controller, KIND) && secret.type === SECRET_TYPE;
  const labels = templated ? metadata.labels : pick(metadata.labels, KEYROTOR_LABELS, 63);
  const own = pick(metadata.annotations, KEYROTOR_ANNOTATIONS, MAX_CACHED_VALUE_CHARS);
  const annotations = templated ? { ...templateAnnotations(metadata.annotations), ...own } : own;
  let data: Record<string, string> | undefined;
  if (secret.type === SECRET_TYPE) {
    data = pick(secret.data, KEY_DATA, MAX_CACHED_VALUE_CHARS);
    if (templated) data = withRenderedDigests(data, secret.data, renderedNamesOf(own));
  } else if (secret.type === VERIFIER_SECRET_TYPE)
    data = pick(
      secret.data,
      [VERIFIER_FILE],
      isKeyrotorKind(controller, ISSUER_KIND) ? MAX_CACHED_VERIFIER_CHARS : 0,
    );
  const view: SecretLike = {
    metadata: {
      ...(metadata.name === undefined ? {} : { name: metadata.name }),
      ...(metadata.namespace === undefined ? {} : { namespace: metadata.namespace }),
      ...(metadata.uid === undefined ? {} : { uid: metadata.uid }),
      ...(metadata.resourceVersion === undefined ? {} : { resourceVersion: metadata.resourceVersion }),
      ...(labels === undefined ? {} : { labels }),
      ...(annotations === undefined || Object.keys(annotations).length === 0 ? {} : { annotations }),
      ...(controller === undefined ? {} : { ownerReferences: [controller] }),
    },
    ...(secret.type === undefined ? {} : { type: secret.type }),
    ...(data === undefined ? {} : { data }),
  };
  // The view has a subset of T's fields; callers read only those (SecretLike).
  return view as T;
}

/** Characters of the values a cached Secret holds: about the memory it costs. */
export function cachedSize(secret: SecretLike): number {
  const sum = (record: Readonly<Record<string, string>> | undefined) =>
    Object.entries(record ?? {}).reduce((total, [key, value]) => total + key.length + value.length, 0);
  return sum(secret.data) + sum(secret.metadata?.labels) + sum(secret.metadata?.annotations);
}

/** How many Secrets keyrotor caches and how large they are, as gauges in `registry`. */
export function registerSecretCacheMetrics(registry: Registry, cached: () => readonly SecretLike[]): void {
  new Gauge({
    name: 'keyrotor_secret_cache_objects',
    help: 'Secrets in keyrotor’s cache (its own key and verifier Secrets, and any that claim to be)',
    registers: [registry],
    collect() {
      this.set(cached().length);
    },
  });
  new Gauge({
    name: 'keyrotor_secret_cache_bytes',
    help: 'Characters of data, label and annotation keys and values the Secret cache holds',
    registers: [registry],
    collect() {
      this.set(cached().reduce((total, secret) => total + cachedSize(secret), 0));
    },
  });
}

/** Field selectors of the Secret cache: keyrotor's two Secret types, one watch each, nothing else. */
export const SECRET_FIELD_SELECTORS: readonly string[] = [
  `type=${SECRET_TYPE}`,
  `type=${VERIFIER_SECRET_TYPE}`,
];

/**
 * Secrets per list page. A page is bounded by count, not bytes, and a Secret may be 1.5 MiB as served:
 * 50 keep one response under 75 MiB however large the Secrets of keyrotor's types are.
 */
export const SECRET_LIST_PAGE_SIZE = 50;
