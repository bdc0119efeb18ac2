// The environment rule between an ApiKey and its namespace: the controller's side of the policy
// keyrotor-environments (policies/environments-policy.yaml). Admission only sees a namespace's labels
// when an ApiKey is written; a namespace relabelled afterwards is caught here (ADR 0003).
import { ENVIRONMENTS, type Environment } from '../api/types.ts';

/** The namespace label that says which environment a namespace is, and so which keys it may hold. */
export const LABEL_ENVIRONMENT = 'keyrotor.dev/environment';

const VALID = `valid values: ${ENVIRONMENTS.join(', ')}`;
/**
 * A label value is echoed only when it cannot be a key: keys contain '_' (keys/format.ts), and a
 * namespace label is the one value here that no schema of keyrotor's has checked.
 */
const ECHOABLE = /^[A-Za-z0-9.-]{1,32}$/;

export interface EnvironmentProblem {
  /** The label names another environment, is not an environment, or is required and absent. */
  readonly kind: 'mismatch' | 'invalid' | 'missing';
  readonly message: string;
}

/**
 * Why a key of `environment` may not be issued or rotated in namespace `namespace` with `labels`, or
 * undefined when it may. The label, when present, must be one of the environments and equal to the
 * key's; when `required`, it must be present. Every message names the label, its value and the valid
 * values, so whoever reads the condition knows what to fix.
 */
export function environmentProblem(
  namespace: string,
  labels: Readonly<Record<string, string>>,
  environment: Environment,
  required: boolean,
): EnvironmentProblem | undefined {
  if (!Object.hasOwn(labels, LABEL_ENVIRONMENT)) {
    if (!required) return undefined;
    return {
      kind: 'missing',
      message: `namespace ${namespace} has no label ${LABEL_ENVIRONMENT}, which this cluster requires (--require-environment-label) of every namespace with ApiKeys; ${VALID}`,
    };
  }
  const value = labels[LABEL_ENVIRONMENT] ?? '';
  if (!(ENVIRONMENTS as readonly string[]).includes(value)) {
    const labelled = ECHOABLE.test(value)
      ? `is labelled ${LABEL_ENVIRONMENT}=${value}, which is not an environment`
      : `has a label ${LABEL_ENVIRONMENT} whose value is not an environment (not shown)`;
    return { kind: 'invalid', message: `namespace ${namespace} ${labelled} (${VALID})` };
  }
  if (value === environment) return undefined;
  return {
    kind: 'mismatch',
    message: `namespace ${namespace} is labelled ${LABEL_ENVIRONMENT}=${value}, but spec.environment is ${environment}: only ${value} keys may be issued there (${VALID})`,
  };
}
