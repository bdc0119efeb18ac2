import type { ApiKey, ApiKeyIssuer } from '../api/types.ts';
import type { ResolvedSpec } from './spec.ts';
import { formatDuration, parseDuration } from '../schedule/duration.ts';
import { scopeGranted } from '../verify/verifier.ts';
import { describeSelector, selectorMatches } from './selector.ts';

/** The rules of an issuer, by the spec field that states them: what a refusal names. */
export type IssuerRule =
  'namespaceSelector' | 'scopes' | 'environments' | 'maxExpiresAfter' | 'requireSchedule';

export type Admission =
  | { readonly permitted: true }
  | {
      readonly permitted: false;
      readonly reason: 'NotPermitted' | 'IssuerNotFound';
      /** The rules broken, in the order the spec lists them. */
      readonly rules: readonly IssuerRule[];
      /** For a person: which issuer, which rule, what it allows. */
      readonly message: string;
    };

export const issuerName = (issuer: Pick<ApiKeyIssuer, 'metadata'>) =>
  `${issuer.metadata.namespace}/${issuer.metadata.name}`;

/**
 * Does the issuer permit this key? Every rule is checked, so one refusal lists everything to fix.
 * `namespaceLabels` are the labels of the ApiKey's namespace; an absent namespaceSelector admits only
 * the issuer's own namespace, so no other team gets keys for an API without its owners' consent.
 */
export function admit(
  apiKey: ApiKey,
  spec: ResolvedSpec,
  issuer: ApiKeyIssuer | undefined,
  namespaceLabels: Readonly<Record<string, string>>,
): Admission {
  const ref = apiKey.spec.issuerRef;
  if (ref === undefined) return { permitted: true };
  if (issuer === undefined) {
    return {
      permitted: false,
      reason: 'IssuerNotFound',
      rules: [],
      message: `ApiKeyIssuer ${ref.namespace}/${ref.name} does not exist; the key is issued once it does and permits it`,
    };
  }
  const broken: [IssuerRule, string][] = [];
  const { namespace } = apiKey.metadata;
  const selector = issuer.spec.namespaceSelector;
  if (selector === undefined) {
    if (namespace !== issuer.metadata.namespace) {
      broken.push([
        'namespaceSelector',
        `it has no namespaceSelector, so only ApiKeys in namespace ${issuer.metadata.namespace} may use it, not ${namespace}`,
      ]);
    }
  } else if (!selectorMatches(selector, namespaceLabels)) {
    broken.push([
      'namespaceSelector',
      `namespace ${namespace} does not match its namespaceSelector (${describeSelector(selector)})`,
    ]);
  }
  const granted = issuer.spec.scopes ?? [];
  const refused = spec.scopes.filter((scope) => !scopeGranted(granted, scope));
  if (refused.length > 0) {
    broken.push([
      'scopes',
      `${refused.map((scope) => `"${scope}"`).join(', ')} ${refused.length === 1 ? 'is' : 'are'} not among the scopes it grants (${granted.join(', ') || 'none'})`,
    ]);
  }
  const environments = issuer.spec.environments;
  if (environments !== undefined && !environments.includes(spec.environment)) {
    broken.push([
      'environments',
      `environment ${spec.environment} is not one it accepts (${environments.join(', ')})`,
    ]);
  }
  const max = issuer.spec.maxExpiresAfter;
  if (max !== undefined) {
    const maxMs = parseDuration(max);
    if (maxMs === undefined) {
      broken.push([
        'maxExpiresAfter',
        `its maxExpiresAfter "${max}" is not a duration, so it permits no key`,
      ]);
    } else if (spec.expiresAfterMs > maxMs) {
      broken.push([
        'maxExpiresAfter',
        `expiresAfter ${formatDuration(spec.expiresAfterMs)} is longer than its maxExpiresAfter (${max})`,
      ]);
    }
  }
  if (issuer.spec.requireSchedule === true && spec.schedule === undefined) {
    broken.push(['requireSchedule', 'it requires a rotation schedule and rotation.schedule is not set']);
  }
  if (broken.length === 0) return { permitted: true };
  return {
    permitted: false,
    reason: 'NotPermitted',
    rules: broken.map(([rule]) => rule),
    message: `ApiKeyIssuer ${issuerName(issuer)} does not permit this key: ${broken
      .map(([rule, why]) => `[${rule}] ${why}`)
      .join('; ')}`,
  };
}
