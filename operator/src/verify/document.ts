/**
 * The verifier document: what an API needs to check keys without holding any. keyrotor writes one per
 * issuer into a Secret (`verifier.json`); the API mounts it. Its JSON Schema is docs/verifier.schema.json,
 * so services in other languages can read it too.
 */

export const VERIFIER_API_VERSION = 'keyrotor.dev/verifier/v1';
/** The Secret's data key that holds the document. */
export const VERIFIER_FILE = 'verifier.json';

export interface VerifierEntry {
  /** The key's public id: the first 16 hex digits of its SHA-256. */
  readonly keyId: string;
  /** SHA-256 of the whole key, 64 lowercase hex digits. Never the key itself. */
  readonly sha256: string;
  readonly scopes: readonly string[];
  readonly environment: string;
  /** RFC 3339: the key is valid from notBefore (inclusive) to notAfter (exclusive). */
  readonly notBefore: string;
  readonly notAfter: string;
  /** The ApiKey the key belongs to. */
  readonly consumer: { readonly namespace: string; readonly name: string };
}

export interface VerifierDocument {
  readonly apiVersion: typeof VERIFIER_API_VERSION;
  /** The issuer, as namespace/name. */
  readonly issuer: string;
  /** Increases with every change, so a service can log which version it checks against. */
  readonly revision: number;
  readonly keys: readonly VerifierEntry[];
}

export class VerifierDocumentError extends Error {
  override readonly name = 'VerifierDocumentError';
}

const HEX64 = /^[0-9a-f]{64}$/;
/** RFC 3339 with a zone, as keyrotor writes (toISOString); Date.parse alone would take "2026" too. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isStringArray = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');

function entryProblem(entry: unknown): string | undefined {
  if (!isObject(entry)) return 'is not an object';
  const { keyId, sha256, scopes, environment, notBefore, notAfter, consumer } = entry;
  if (typeof sha256 !== 'string' || !HEX64.test(sha256)) return 'sha256 must be 64 lowercase hex digits';
  if (keyId !== sha256.slice(0, 16)) return 'keyId must be the first 16 hex digits of sha256';
  if (!isStringArray(scopes)) return 'scopes must be a list of strings';
  if (typeof environment !== 'string') return 'environment must be a string';
  for (const [field, value] of [
    ['notBefore', notBefore],
    ['notAfter', notAfter],
  ] as const) {
    if (typeof value !== 'string' || !RFC3339.test(value) || Number.isNaN(Date.parse(value)))
      return `${field} must be an RFC 3339 time`;
  }
  if (Date.parse(notAfter as string) <= Date.parse(notBefore as string))
    return 'notAfter must be after notBefore';
  if (!isObject(consumer) || typeof consumer.namespace !== 'string' || typeof consumer.name !== 'string')
    return 'consumer must name the ApiKey (namespace, name)';
  return undefined;
}

/** Parses and checks a verifier document; the error says which entry and field is wrong. */
export function parseVerifierDocument(text: string): VerifierDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new VerifierDocumentError(`not JSON: ${(error as Error).message}`);
  }
  if (!isObject(value)) throw new VerifierDocumentError('must be a JSON object');
  if (value.apiVersion !== VERIFIER_API_VERSION)
    throw new VerifierDocumentError(
      `apiVersion must be ${VERIFIER_API_VERSION}, not ${String(value.apiVersion)}`,
    );
  if (typeof value.issuer !== 'string') throw new VerifierDocumentError('issuer must be namespace/name');
  if (!Number.isInteger(value.revision)) throw new VerifierDocumentError('revision must be a whole number');
  if (!Array.isArray(value.keys)) throw new VerifierDocumentError('keys must be a list');
  const seen = new Set<string>();
  value.keys.forEach((entry: unknown, index) => {
    const problem = entryProblem(entry);
    if (problem !== undefined) throw new VerifierDocumentError(`keys[${index}]: ${problem}`);
    // A key listed twice could carry two sets of scopes or validity; which one a verifier used would be luck.
    const { keyId } = entry as VerifierEntry;
    if (seen.has(keyId)) throw new VerifierDocumentError(`keys[${index}]: keyId ${keyId} is listed twice`);
    seen.add(keyId);
  });
  return value as unknown as VerifierDocument;
}
