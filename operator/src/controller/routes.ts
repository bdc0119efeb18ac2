// Which controllers a change of each cached kind concerns (the manager's routing table). Handlers only
// enqueue: the work happens in each controller's own queue.
import { GROUP, ISSUER_KIND, LABEL_API_KEY, LABEL_ISSUER } from '../api/names.ts';
import { referencesIssuer } from '../issuer/verifier-plan.ts';
import { LABEL_ENVIRONMENT } from '../reconcile/environment.ts';
import type { ApiKeyController } from './apikeys.ts';
import type { CacheHandlers, SecretObject, SharedCaches } from './caches.ts';
import type { ReadersController } from './readers.ts';
import type { IssuerVerifiers } from './verifiers.ts';
import type { WorkloadsController } from './workloads.ts';

export interface RouteTargets {
  readonly caches: SharedCaches;
  readonly apiKeys: ApiKeyController;
  readonly verifiers: IssuerVerifiers;
  readonly readers: ReadersController | undefined;
  readonly workloads: WorkloadsController | undefined;
}

/** A verifier Secret's issuers: by its label, and by its owner (an edit may have changed the label). */
function issuersOfVerifierSecret(secret: SecretObject): Set<string> {
  const issuers = new Set<string>();
  const label = secret.metadata?.labels?.[LABEL_ISSUER];
  if (label !== undefined) issuers.add(label);
  for (const owner of secret.metadata?.ownerReferences ?? []) {
    if (owner.controller === true && owner.kind === ISSUER_KIND && owner.apiVersion.startsWith(`${GROUP}/`))
      issuers.add(owner.name);
  }
  return issuers;
}

/** `targets` is read at each change: the controllers exist by the time the caches start. */
export function routes(targets: () => RouteTargets): CacheHandlers {
  /** The environment label of each namespace as last seen: a change of it concerns all its keys. */
  const environments = new Map<string, string | undefined>();
  return {
    apiKey: (apiKey, change) => {
      const { apiKeys, readers, workloads } = targets();
      if (!apiKeys.apiKeyChanged(apiKey, change)) return;
      readers?.apiKeyChanged(apiKey.metadata.namespace, apiKey.metadata.name);
      workloads?.apiKeyChanged(apiKey.metadata.namespace, apiKey.metadata.name);
    },
    secret: (secret) => {
      const { apiKeys, verifiers } = targets();
      const namespace = secret.metadata?.namespace;
      if (!namespace) return;
      // An object keyrotor labelled as an ApiKey's: look at that ApiKey.
      const owner = secret.metadata?.labels?.[LABEL_API_KEY];
      if (owner !== undefined) apiKeys.enqueue(namespace, owner);
      for (const issuer of issuersOfVerifierSecret(secret))
        verifiers.verifierSecretChanged(namespace, issuer);
    },
    issuer: (issuer, cached) => {
      const { apiKeys, caches, verifiers } = targets();
      // An issuer's spec changed, or it was deleted: every key that references it is looked at again.
      if (!verifiers.issuerChanged(issuer, cached)) return;
      for (const apiKey of caches.apiKeys())
        if (referencesIssuer(apiKey, issuer))
          apiKeys.enqueue(apiKey.metadata.namespace, apiKey.metadata.name);
    },
    namespace: (namespace, change) => {
      const { apiKeys, caches, readers } = targets();
      // Every key obeys its namespace's environment label (reconcile/environment.ts): a change of that
      // label concerns all of them; any change may change which issuers admit the namespace's keys.
      const name = namespace.metadata?.name ?? '';
      const environment = namespace.metadata?.labels?.[LABEL_ENVIRONMENT];
      const relabelled = !environments.has(name) || environments.get(name) !== environment;
      if (change === 'delete') environments.delete(name);
      else environments.set(name, environment);
      for (const apiKey of caches.apiKeysIn(name)) {
        if (relabelled || apiKey.spec.issuerRef !== undefined)
          apiKeys.enqueue(apiKey.metadata.namespace, apiKey.metadata.name);
      }
      readers?.namespaceChanged(name);
    },
  };
}
