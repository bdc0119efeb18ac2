import {
  AuthorizationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';

import { GROUP } from '../../operator/src/api/names.ts';
import { tokenKubeConfig } from './kube.ts';
import { waitFor } from './wait.ts';

/**
 * A hostile tenant of one namespace: a ServiceAccount with a TokenRequest token, bound to a Role that
 * lets it create and edit ApiKeys, Secrets, ConfigMaps and Pods there, as the built-in `edit` role does,
 * but not read Secrets (no get, list or watch) and not write any status subresource.
 */
export interface Tenant {
  readonly namespace: string;
  /** The ServiceAccount's name; its user is system:serviceaccount:<namespace>:<name>. */
  readonly name: string;
  /** Authenticates as the tenant: every call through it is what the tenant could do. */
  readonly kc: KubeConfig;
}

export const TENANT_RULES = [
  {
    apiGroups: [GROUP],
    resources: ['apikeys'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'update', 'patch', 'delete'] },
  {
    apiGroups: [''],
    resources: ['configmaps', 'pods'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  { apiGroups: [''], resources: ['pods/ephemeralcontainers'], verbs: ['update', 'patch'] },
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list', 'create'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['get', 'list', 'watch'] },
];

export async function createTenant(admin: KubeConfig, namespace: string, name = 'tenant'): Promise<Tenant> {
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: TENANT_RULES } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    },
  });
  const request = await core.createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  const token = request.status?.token;
  if (token === undefined) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  const tenant = { namespace, name, kc: tokenKubeConfig(admin, token) };
  // RBAC reaches the authorizer's cache within moments: wait until the tenant may list ApiKeys.
  await waitFor(async () => ((await can(tenant, 'list', GROUP, 'apikeys')) ? true : undefined), {
    description: `tenant ${namespace}/${name} to be authorized`,
  });
  return tenant;
}

/** `kubectl auth can-i VERB RESOURCE[/NAME]` as the tenant, through a SelfSubjectAccessReview. */
export async function can(
  tenant: Pick<Tenant, 'kc' | 'namespace'>,
  verb: string,
  group: string,
  resource: string,
  name?: string,
): Promise<boolean> {
  const review = await tenant.kc.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
    body: {
      spec: {
        resourceAttributes: {
          namespace: tenant.namespace,
          verb,
          group,
          resource,
          ...(name === undefined ? {} : { name }),
        },
      },
    },
  });
  return review.status?.allowed === true;
}

/** Whether ServiceAccount `serviceAccount` of the namespace may `verb` Secret `name` (a SubjectAccessReview). */
export async function serviceAccountCan(
  admin: KubeConfig,
  namespace: string,
  serviceAccount: string,
  verb: string,
  secretName: string,
): Promise<boolean> {
  const review = await admin.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${namespace}:${serviceAccount}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: { namespace, verb, group: '', resource: 'secrets', name: secretName },
      },
    },
  });
  return review.status?.allowed === true;
}
