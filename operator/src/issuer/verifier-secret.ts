// The verifier Secret as keyrotor writes it (name, labels, owner, data) and the issuer status beside it.
import {
  ISSUER_KIND,
  LABEL_ISSUER,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
  VERIFIER_SECRET_TYPE,
} from '../api/names.ts';
import type { ApiKeyIssuer, ApiKeyIssuerStatus } from '../api/types.ts';
import { type ConditionUpdate, setCondition } from '../reconcile/conditions.ts';
import { controllerReference } from '../reconcile/owner.ts';
import type { SecretLike, SecretManifest } from '../reconcile/secret.ts';
import { VERIFIER_FILE } from '../verify/document.ts';

export const verifierSecretNameOf = (issuer: ApiKeyIssuer) =>
  issuer.spec.verifierSecretName ?? `${issuer.metadata.name}-verifier`;

export function verifierManifest(
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

/**
 * True when the verifier Secret holds exactly the bytes keyrotor would write, with its labels and
 * type: anything else (deleted, an edit by hand, even one that parses the same) is rewritten.
 */
export function holdsExactly(
  verifierSecret: SecretLike | undefined,
  issuer: ApiKeyIssuer,
  text: string,
): boolean {
  const stored = verifierSecret?.data?.[VERIFIER_FILE];
  return (
    verifierSecret !== undefined &&
    stored !== undefined &&
    Buffer.from(stored, 'base64').toString('utf8') === text &&
    !metadataDrifted(verifierSecret, issuer)
  );
}

export function issuerStatus(
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
