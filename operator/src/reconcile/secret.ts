import {
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
  KIND,
  LABEL_API_KEY,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  SECRET_TYPE,
} from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import { controllerReference, type ControllerReference } from './owner.ts';
import { sealOf, type SealedFields } from './seal.ts';
import {
  ownPart,
  partDigest,
  renderData,
  renderedDigest,
  renderedNamesOf,
  templateValuesOf,
} from './secret-data.ts';
import type { ResolvedSpec } from './spec.ts';

/** The parts of a Secret keyrotor reads; data values are base64 as the API serves them. */
export interface SecretLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  };
  type?: string;
  data?: Record<string, string>;
}

/** A Secret as keyrotor writes it with server-side apply. */
export interface SecretManifest {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences: ControllerReference[];
  };
  type: string;
  data: Record<string, string>;
}

export interface CurrentKey {
  readonly key: string;
  readonly keyId: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export interface PreviousKey {
  readonly key: string;
  readonly keyId: string;
  /** When the previous key stops being served: the end of its grace period or its own expiry. */
  readonly expiresAt: Date;
}

const encode = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const decode = (base64: string | undefined) =>
  base64 === undefined ? undefined : Buffer.from(base64, 'base64').toString('utf8');

/** An RFC 3339 time with a four-digit year, as keyrotor writes them; anything else reads as missing. */
function parseTime(text: string | undefined): Date | undefined {
  if (text === undefined || !/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
  const time = new Date(text);
  return Number.isNaN(time.getTime()) ? undefined : time;
}

/** True when the Secret's controller is this ApiKey, or `kind` (same uid, not just the same name). */
export function isControlledBy(secret: SecretLike, owner: Pick<ApiKey, 'metadata'>, kind = KIND): boolean {
  return (secret.metadata?.ownerReferences ?? []).some(
    (ref) => ref.controller === true && ref.uid === owner.metadata.uid && ref.kind === kind,
  );
}

/** What a Secret holds, decoded; undefined fields are missing or unreadable. */
export interface SecretContents {
  readonly key: string | undefined;
  readonly keyId: string | undefined;
  readonly issuedAt: Date | undefined;
  readonly expiresAt: Date | undefined;
  readonly previousKey: string | undefined;
  readonly previousKeyId: string | undefined;
  readonly previousExpiresAt: Date | undefined;
  readonly issueReason: string | undefined;
  readonly rotateHandled: string | undefined;
  readonly revokedKeyId: string | undefined;
  /** The key sequence the Secret claims; only a matching seal makes it keyrotor's. */
  readonly sequence: number | undefined;
  readonly seal: string | undefined;
  /** The data keys the Secret says keyrotor rendered (only a matching seal makes that so). */
  readonly renderedNames: readonly string[] | undefined;
  /** What the seal covers of those parts, as they are now (secret-data.ts). */
  readonly renderedDigest: string | undefined;
}

/** The sequence annotation, when it is a plain non-negative integer. */
function parseSequence(text: string | undefined): number | undefined {
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

export function readSecret(secret: SecretLike): SecretContents {
  const data = secret.data ?? {};
  const renderedNames = renderedNamesOf(secret.metadata?.annotations);
  return {
    key: decode(data[DATA_API_KEY]),
    keyId: decode(data[DATA_KEY_ID]),
    issuedAt: parseTime(secret.metadata?.annotations?.[ANNOTATION_ISSUED_AT]),
    expiresAt: parseTime(decode(data[DATA_EXPIRES_AT])),
    previousKey: decode(data[DATA_PREVIOUS_API_KEY]),
    previousKeyId: decode(data[DATA_PREVIOUS_KEY_ID]),
    previousExpiresAt: parseTime(decode(data[DATA_PREVIOUS_EXPIRES_AT])),
    issueReason: secret.metadata?.annotations?.[ANNOTATION_ISSUE_REASON],
    rotateHandled: secret.metadata?.annotations?.[ANNOTATION_ROTATE_HANDLED],
    revokedKeyId: secret.metadata?.annotations?.[ANNOTATION_REVOKED_KEY_ID],
    sequence: parseSequence(secret.metadata?.annotations?.[ANNOTATION_KEY_SEQUENCE]),
    seal: secret.metadata?.annotations?.[ANNOTATION_SEAL],
    renderedNames,
    renderedDigest: renderedNames && renderedDigest(renderedNames, data),
  };
}

/** The fields a seal covers, from a Secret's contents. */
export function sealedFieldsOf(uid: string, contents: SecretContents): SealedFields {
  return {
    uid,
    sequence: contents.sequence ?? 0,
    key: contents.key,
    issuedAt: contents.issuedAt,
    expiresAt: contents.expiresAt,
    previousKey: contents.previousKey,
    previousExpiresAt: contents.previousExpiresAt,
    issueReason: contents.issueReason,
    rotateHandled: contents.rotateHandled,
    revokedKeyId: contents.revokedKeyId,
    renderedDigest: contents.renderedDigest,
  };
}

/** What keyrotor puts in a Secret besides the spec: the keys and the bookkeeping that makes it the source of truth. */
export interface SecretState {
  /** The current key; undefined once revoked. */
  readonly current: CurrentKey | undefined;
  readonly previous: PreviousKey | undefined;
  /** Why the current key was issued (Issue, Expiry, Schedule, Manual, ...). */
  readonly issueReason: string;
  /** The rotate annotation value acted on, so the same value never rotates twice. */
  readonly rotateHandled: string | undefined;
  /** Set when the key was revoked: the Secret then holds no key at all. */
  readonly revokedKeyId: string | undefined;
  /** One more than before with every change of key: what a replayed older Secret gives away. */
  readonly sequence: number;
}

/** The parts of a ResolvedSpec a Secret is written from. */
export type SecretSpec = Pick<
  ResolvedSpec,
  'secretName' | 'scopes' | 'labels' | 'annotations' | 'environment' | 'dataTemplates'
>;

export function desiredSecret(
  apiKey: ApiKey,
  spec: SecretSpec,
  state: SecretState,
  sealKey: Uint8Array,
): SecretManifest {
  const { current, previous } = state;
  const data: Record<string, string> = { [DATA_SCOPES]: encode(spec.scopes.join(' ')) };
  const annotations: Record<string, string> = {
    ...spec.annotations,
    [ANNOTATION_ISSUE_REASON]: state.issueReason,
  };
  if (current !== undefined) {
    data[DATA_API_KEY] = encode(current.key);
    data[DATA_KEY_ID] = encode(current.keyId);
    data[DATA_EXPIRES_AT] = encode(current.expiresAt.toISOString());
    annotations[ANNOTATION_ISSUED_AT] = current.issuedAt.toISOString();
  }
  if (previous !== undefined) {
    data[DATA_PREVIOUS_API_KEY] = encode(previous.key);
    data[DATA_PREVIOUS_KEY_ID] = encode(previous.keyId);
    data[DATA_PREVIOUS_EXPIRES_AT] = encode(previous.expiresAt.toISOString());
  }
  // Rendered only while there is a key: a revoked Secret holds no key in any part.
  const rendered =
    current === undefined
      ? {}
      : renderData(spec.dataTemplates, templateValuesOf(apiKey, spec, current, previous));
  const renderedNames = Object.keys(rendered);
  Object.assign(data, rendered);
  if (renderedNames.length > 0) annotations[ANNOTATION_RENDERED_DATA] = renderedNames.join(',');
  if (state.rotateHandled !== undefined) annotations[ANNOTATION_ROTATE_HANDLED] = state.rotateHandled;
  if (state.revokedKeyId !== undefined) annotations[ANNOTATION_REVOKED_KEY_ID] = state.revokedKeyId;
  annotations[ANNOTATION_KEY_SEQUENCE] = String(state.sequence);
  annotations[ANNOTATION_SEAL] = sealOf(sealKey, {
    uid: apiKey.metadata.uid,
    sequence: state.sequence,
    key: current?.key,
    issuedAt: current?.issuedAt,
    expiresAt: current?.expiresAt,
    previousKey: previous?.key,
    previousExpiresAt: previous?.expiresAt,
    issueReason: state.issueReason,
    rotateHandled: state.rotateHandled,
    revokedKeyId: state.revokedKeyId,
    renderedDigest: renderedNames.length > 0 ? renderedDigest(renderedNames, data) : undefined,
  });
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: spec.secretName,
      namespace: apiKey.metadata.namespace,
      // The template first, so keyrotor's own labels win (the schema refuses clashes anyway).
      labels: { ...spec.labels, [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_API_KEY]: apiKey.metadata.name },
      annotations,
      ownerReferences: [controllerReference(apiKey)],
    },
    type: SECRET_TYPE,
    data,
  };
}

/** Annotations keyrotor writes on a Secret; one it no longer sets must go. */
const OWN_ANNOTATIONS = [
  ANNOTATION_ISSUED_AT,
  ANNOTATION_ISSUE_REASON,
  ANNOTATION_ROTATE_HANDLED,
  ANNOTATION_REVOKED_KEY_ID,
  ANNOTATION_KEY_SEQUENCE,
  ANNOTATION_SEAL,
  ANNOTATION_RENDERED_DATA,
];

const KEYROTOR_DATA = new Set([
  DATA_API_KEY,
  DATA_KEY_ID,
  DATA_SCOPES,
  DATA_EXPIRES_AT,
  DATA_PREVIOUS_API_KEY,
  DATA_PREVIOUS_KEY_ID,
  DATA_PREVIOUS_EXPIRES_AT,
]);

function subsetDiffers(wanted: Record<string, string>, actual: Record<string, string> | undefined): boolean {
  return Object.entries(wanted).some(([key, value]) => actual?.[key] !== value);
}

/**
 * What differs between the Secret as it is and as keyrotor would write it, by name (never by value):
 * empty when nothing needs writing. Labels and annotations others add are theirs to keep.
 */
export function secretDrift(observed: SecretLike, desired: SecretManifest): string[] {
  const drift: string[] = [];
  if (observed.type !== desired.type) drift.push('type');
  if (subsetDiffers(desired.metadata.labels, observed.metadata?.labels)) drift.push('labels');
  const stale = OWN_ANNOTATIONS.some(
    (key) =>
      desired.metadata.annotations[key] === undefined && observed.metadata?.annotations?.[key] !== undefined,
  );
  if (stale || subsetDiffers(desired.metadata.annotations, observed.metadata?.annotations))
    drift.push('annotations');
  const observedData = observed.data ?? {};
  const changedData = [...KEYROTOR_DATA].filter((key) => observedData[key] !== desired.data[key]);
  drift.push(...changedData.map((key) => `data.${key}`));
  // Rendered parts by digest: the Secret cache holds only that of each (secret-data.ts).
  const renderedNames = [
    ...new Set([
      ...Object.keys(desired.data).filter((key) => !KEYROTOR_DATA.has(key)),
      ...(renderedNamesOf(observed.metadata?.annotations) ?? []).filter((key) => !KEYROTOR_DATA.has(key)),
    ]),
  ];
  const digest = (value: string | undefined) => (value === undefined ? undefined : partDigest(value));
  const changedRendered = renderedNames.filter(
    (key) => digest(ownPart(observedData, key)) !== digest(ownPart(desired.data, key)),
  );
  drift.push(...changedRendered.map((key) => `data.${key}`));
  const ownerRef = desired.metadata.ownerReferences[0];
  const hasOwner = (observed.metadata?.ownerReferences ?? []).some(
    (ref) => ref.uid === ownerRef?.uid && ref.controller === true,
  );
  if (!hasOwner) drift.push('ownerReferences');
  return drift;
}
