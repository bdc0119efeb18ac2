/**
 * `keyrotor/verify`: what an API needs to check keyrotor keys against the verifier Secret it mounts,
 * holding SHA-256 hashes only. package.json exports this module compiled (dist/verify/index.js), and
 * nothing it imports at run time is outside node: builtins and keyrotor's verify/ and keys/ modules, so
 * a service takes on none of the operator's dependencies.
 *
 *   const verifier = await followVerifier('/etc/keyrotor/verifier/verifier.json');
 *   const result = verifier.verify(presented, { scope: 'prices:read' });
 */
export {
  VERIFIER_API_VERSION,
  VERIFIER_FILE,
  VerifierDocumentError,
  parseVerifierDocument,
  type VerifierDocument,
  type VerifierEntry,
} from './document.ts';
export { followVerifier, type FollowOptions, type FollowedVerifier } from './follow.ts';
export {
  Verifier,
  scopeGranted,
  type KnownKey,
  type VerifyOptions,
  type VerifyReason,
  type VerifyResult,
} from './verifier.ts';
// keyId: the public fingerprint of a presented key, to log instead of the key (it is the keyId a
// verifier entry and the ApiKey's status show). parseKey: the offline shape and checksum check.
export { keyId, parseKey, type ParseResult, type ParsedKey } from '../keys/format.ts';
