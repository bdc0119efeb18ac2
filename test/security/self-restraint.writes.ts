// The writes keyrotor never makes, each one its RBAC (the chart's, cluster-wide, plus the extra grant of
// self-restraint.test.ts) allows, so that what refuses it is the policy keyrotor-self-restraint. Every
// write but the token request (which has no dry run) is a dry run: admission runs, nothing is stored.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
  V1MicroTime,
  type RbacV1Subject,
  type V1PolicyRule,
  type V1Role,
  type V1RoleBinding,
} from '@kubernetes/client-node';

import { GROUP, READERS_PLURAL, VERSION } from '../../operator/src/api/names.ts';
import { createDeployment } from '../support/kube.ts';
import type { KubeObject } from './chart-policies.ts';

export interface Write {
  /** The kind of object, for the test name. */
  readonly group: string;
  readonly what: string;
  /** Part of the policy's message. */
  readonly message: string;
  readonly call: () => Promise<unknown>;
}

const dryRun = 'All';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const readers = (apiKey: string) => `keyrotor:${apiKey}:readers`;

function role(name: string, rules: V1PolicyRule[]): V1Role {
  return { metadata: { name }, rules };
}

function binding(name: string, roleName: string, subjects: RbacV1Subject[]): V1RoleBinding {
  return {
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName },
    subjects,
  };
}

/**
 * A ClusterRole and its binding that let a ServiceAccount make every write below (and hold what the
 * Roles below grant, which RBAC requires of whoever writes them), as a careless cluster admin might.
 */
export function broadRbac(name: string, subject: { name: string; namespace: string }): KubeObject[] {
  const all = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
  // prettier-ignore
  const rules: V1PolicyRule[] = [
    { apiGroups: [''], resources: ['secrets'], verbs: all },
    { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: ['create', 'patch', 'delete'] },
    { apiGroups: ['apps'], resources: ['deployments'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['namespaces'], verbs: ['patch'] },
    { apiGroups: [GROUP], resources: [READERS_PLURAL], verbs: all },
    { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create'] },
    { apiGroups: [''], resources: ['configmaps', 'pods', 'serviceaccounts/token'], verbs: ['create'] },
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
  ];
  const rbac = 'rbac.authorization.k8s.io';
  return [
    { apiVersion: `${rbac}/v1`, kind: 'ClusterRole', metadata: { name }, rules },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: rbac, kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', ...subject }],
    },
  ];
}

/** Creates what the writes act on (as the admin) and returns the writes (as keyrotor). */
export async function writes({
  admin,
  asKeyrotor,
  keys,
  listed,
}: {
  admin: KubeConfig;
  asKeyrotor: KubeConfig;
  keys: string;
  listed: string;
}): Promise<Write[]> {
  const adminCore = admin.makeApiClient(CoreV1Api);
  const adminRbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await adminCore.createNamespacedSecret({
    namespace: keys,
    body: { metadata: { name: 'app-credentials' }, type: 'Opaque' },
  });
  const getSecret = [
    { apiGroups: [''], resources: ['secrets'], resourceNames: ['x'], verbs: ['get', 'watch'] },
  ];
  for (const name of [readers('victim'), 'app-role'])
    await adminRbac.createNamespacedRole({ namespace: keys, body: role(name, getSecret) });
  await adminRbac.createNamespacedRoleBinding({
    namespace: keys,
    body: binding('app-binding', 'app-role', [{ kind: 'ServiceAccount', name: 'default', namespace: keys }]),
  });
  await createDeployment(admin, keys, 'victim');

  const core = asKeyrotor.makeApiClient(CoreV1Api);
  const rbac = asKeyrotor.makeApiClient(RbacAuthorizationV1Api);
  const apps = asKeyrotor.makeApiClient(AppsV1Api);
  const keySecret = (namespace: string) =>
    core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'planted' }, type: 'keyrotor.dev/api-key' },
      dryRun,
    });
  const patchDeployment = (body: object) =>
    apps.patchNamespacedDeployment({ namespace: keys, name: 'victim', body, dryRun }, mergePatch);
  const patchNamespace = (name: string, body: object) =>
    core.patchNamespace({ name, body, dryRun }, mergePatch);
  const secretTypes = 'it writes only Secrets of the types';
  const roles = 'it writes only Roles named keyrotor:<apikey>:readers';
  const bindings = 'it writes only RoleBindings named keyrotor:<apikey>:readers';
  const restart = 'beyond the pod template annotation keyrotor.dev/restartedAt';
  const label = 'beyond the label keyrotor.dev/mount-guard';
  const never = 'it is one keyrotor never manages keys in';
  const unknown = 'it is not a write keyrotor makes';

  const ownRole = (rules: V1PolicyRule[]) =>
    rbac.createNamespacedRole({ namespace: keys, body: role(readers('mine'), rules), dryRun });
  const ownBinding = (roleName: string, subjects: RbacV1Subject[]) =>
    rbac.createNamespacedRoleBinding({
      namespace: keys,
      body: binding(readers('victim'), roleName, subjects),
      dryRun,
    });

  // prettier-ignore
  return [
    // Secrets: of keyrotor's types only, and nothing else deleted.
    { group: 'Secrets', what: 'an Opaque Secret', message: secretTypes, call: () => core.createNamespacedSecret({ namespace: keys, body: { metadata: { name: 'x' }, type: 'Opaque' }, dryRun }) },
    { group: 'Secrets', what: 'a ServiceAccount token Secret (a token minted for any ServiceAccount)', message: secretTypes, call: () => core.createNamespacedSecret({ namespace: keys, body: { metadata: { name: 'x', annotations: { 'kubernetes.io/service-account.name': 'default' } }, type: 'kubernetes.io/service-account-token' }, dryRun }) },
    { group: 'Secrets', what: 'an edit of a Secret of another type (marking it adoptable)', message: secretTypes, call: () => core.patchNamespacedSecret({ namespace: keys, name: 'app-credentials', body: { metadata: { annotations: { 'keyrotor.dev/adopt': 'true' } } }, dryRun }, mergePatch) },
    { group: 'Secrets', what: 'a delete of a Secret it neither owns nor may adopt', message: secretTypes, call: () => core.deleteNamespacedSecret({ namespace: keys, name: 'app-credentials', dryRun }) },
    // Roles: only its reader Roles, which only get and watch Secrets by name.
    { group: 'Roles', what: 'a Role of another name', message: roles, call: () => rbac.createNamespacedRole({ namespace: keys, body: role('escalate', getSecret), dryRun }) },
    { group: 'Roles', what: 'a reader Role that lists Secrets', message: roles, call: () => ownRole([{ apiGroups: [''], resources: ['secrets'], resourceNames: ['x'], verbs: ['get', 'list'] }]) },
    { group: 'Roles', what: 'a reader Role for every Secret (no resourceNames)', message: roles, call: () => ownRole([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]) },
    { group: 'Roles', what: 'a reader Role that deletes Secrets', message: roles, call: () => ownRole([{ apiGroups: [''], resources: ['secrets'], resourceNames: ['x'], verbs: ['delete'] }]) },
    { group: 'Roles', what: 'a reader Role that creates ConfigMaps', message: roles, call: () => ownRole([{ apiGroups: [''], resources: ['configmaps'], verbs: ['create'] }]) },
    // A patch: the policy sees the whole Role after it.
    { group: 'Roles', what: 'a patch adding list to a reader Role', message: roles, call: () => rbac.patchNamespacedRole({ namespace: keys, name: readers('victim'), body: { rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['x'], verbs: ['get', 'watch', 'list'] }] }, dryRun }, mergePatch) },
    { group: 'Roles', what: 'a delete of a Role not its own', message: roles, call: () => rbac.deleteNamespacedRole({ namespace: keys, name: 'app-role', dryRun }) },
    // RoleBindings: its own Role, ServiceAccounts of the namespace.
    { group: 'RoleBindings', what: 'a RoleBinding of another name', message: bindings, call: () => rbac.createNamespacedRoleBinding({ namespace: keys, body: binding('escalate', readers('victim'), [{ kind: 'ServiceAccount', name: 'default', namespace: keys }]), dryRun }) },
    { group: 'RoleBindings', what: 'a reader RoleBinding to another Role', message: bindings, call: () => ownBinding('app-role', [{ kind: 'ServiceAccount', name: 'default', namespace: keys }]) },
    { group: 'RoleBindings', what: 'a reader RoleBinding to a user', message: bindings, call: () => ownBinding(readers('victim'), [{ kind: 'User', name: 'mallory', apiGroup: 'rbac.authorization.k8s.io' }]) },
    { group: 'RoleBindings', what: 'a reader RoleBinding to a group', message: bindings, call: () => ownBinding(readers('victim'), [{ kind: 'Group', name: 'system:authenticated', apiGroup: 'rbac.authorization.k8s.io' }]) },
    { group: 'RoleBindings', what: "a reader RoleBinding to another namespace's ServiceAccount", message: bindings, call: () => ownBinding(readers('victim'), [{ kind: 'ServiceAccount', name: 'default', namespace: listed }]) },
    { group: 'RoleBindings', what: 'a delete of a RoleBinding not its own', message: bindings, call: () => rbac.deleteNamespacedRoleBinding({ namespace: keys, name: 'app-binding', dryRun }) },
    { group: 'ConfigMaps and ApiKeyReaders', what: 'a ConfigMap of another name', message: 'it writes only the one named keyrotor-readers', call: () => core.createNamespacedConfigMap({ namespace: keys, body: { metadata: { name: 'app-config' } }, dryRun }) },
    { group: 'ConfigMaps and ApiKeyReaders', what: 'an ApiKeyReaders of another name', message: 'it writes only the one named keyrotor-readers', call: () => asKeyrotor.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: keys, plural: READERS_PLURAL, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ApiKeyReaders', metadata: { name: 'other' }, spec: {} }, dryRun }) },
    // Workloads: the restart annotation and nothing else.
    { group: 'workloads', what: "a change of a Deployment's image", message: restart, call: () => patchDeployment({ spec: { template: { spec: { containers: [{ name: 'app', image: 'evil:1' }] } } } }) },
    { group: 'workloads', what: "a change of a Deployment's ServiceAccount", message: restart, call: () => patchDeployment({ spec: { template: { spec: { serviceAccountName: 'bot' } } } }) },
    { group: 'workloads', what: 'a scale of a Deployment', message: restart, call: () => patchDeployment({ spec: { replicas: 5 } }) },
    { group: 'workloads', what: 'another pod template annotation', message: restart, call: () => patchDeployment({ spec: { template: { metadata: { annotations: { 'example.com/x': 'y' } } } } }) },
    { group: 'workloads', what: 'a pod template label', message: restart, call: () => patchDeployment({ spec: { template: { metadata: { labels: { extra: 'y' } } } } }) },
    { group: 'workloads', what: "a change of a Deployment's own labels", message: restart, call: () => patchDeployment({ metadata: { labels: { extra: 'y' } } }) },
    { group: 'workloads', what: 'the restart annotation with another change', message: restart, call: () => patchDeployment({ spec: { replicas: 3, template: { metadata: { annotations: { 'keyrotor.dev/restartedAt': 'now' } } } } }) },
    // Namespaces: the mount guard label and nothing else.
    { group: 'Namespaces', what: 'another Namespace label (e.g. lifting Pod Security)', message: label, call: () => patchNamespace(keys, { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } }) },
    { group: 'Namespaces', what: 'a Namespace annotation', message: label, call: () => patchNamespace(keys, { metadata: { annotations: { x: 'y' } } }) },
    { group: 'Namespaces', what: 'the mount guard label with another change', message: label, call: () => patchNamespace(keys, { metadata: { labels: { 'keyrotor.dev/mount-guard': 'enforced', x: 'y' } } }) },
    // Nothing in Kubernetes' own namespaces or those the chart lists.
    { group: 'forbidden namespaces', what: 'a key Secret in kube-system', message: never, call: () => keySecret('kube-system') },
    { group: 'forbidden namespaces', what: 'a key Secret in kube-node-lease', message: never, call: () => keySecret('kube-node-lease') },
    { group: 'forbidden namespaces', what: 'a key Secret in a namespace the chart lists', message: never, call: () => keySecret(listed) },
    { group: 'forbidden namespaces', what: 'the mount guard label on kube-system', message: never, call: () => patchNamespace('kube-system', { metadata: { labels: { 'keyrotor.dev/mount-guard': 'enforced' } } }) },
    { group: 'forbidden namespaces', what: 'an Event in kube-public', message: never, call: () => asKeyrotor.makeApiClient(EventsV1Api).createNamespacedEvent({ namespace: 'kube-public', body: { metadata: { name: 'x' }, eventTime: new V1MicroTime(), reportingController: 'keyrotor.dev/operator', reportingInstance: 'x', action: 'Issue', reason: 'Issued', type: 'Normal', regarding: { kind: 'ApiKey', name: 'x', namespace: 'kube-public' } }, dryRun }) },
    // Whatever else RBAC might grant it.
    { group: 'anything else', what: 'a Pod', message: unknown, call: () => core.createNamespacedPod({ namespace: keys, body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'x' }] } }, dryRun }) },
    { group: 'anything else', what: 'a ServiceAccount token', message: unknown, call: () => core.createNamespacedServiceAccountToken({ namespace: keys, name: 'default', body: { spec: { audiences: [] } } }) },
  ];
}
