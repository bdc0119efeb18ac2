// Every permission keyrotor's ServiceAccount holds, and why: the reviewed source of the chart's RBAC
// (charts/keyrotor/templates/rbac.yaml). test/unit/rbac.test.ts scans the code for API calls and fails
// on a call this table lacks, or a row no call needs; test/integration/helm.test.ts fails when the chart
// grants anything else. Add a call, add its row here, then the chart's rule.
import { GROUP, ISSUER_PLURAL, PLURAL, READERS_PLURAL, ROLLOUT_GROUP, ROLLOUT_PLURAL } from '../api/names.ts';

/**
 * Where a row is granted. `watched`: in the namespaces keyrotor manages (a ClusterRole when it manages
 * all, a Role in each otherwise). `watched-namespaces`: on the Namespace objects of those namespaces
 * (cluster-scoped; limited by resourceNames when they are listed). `cluster`: cluster-wide in every mode.
 * `release`: in the release's own namespace only.
 */
export type Scope = 'watched' | 'watched-namespaces' | 'cluster' | 'release';

/** The chart switch that grants a row; `always` rows are granted whenever rbac.create is on. */
export type Feature = 'always' | 'readers' | 'workloadRestarts' | 'leaderElection';

/** Stands for the release's full name in resourceNames (the Lease is named after the release). */
export const RELEASE_FULLNAME = '<fullname>';

export interface Permission {
  readonly group: string;
  readonly resource: string;
  /** Verbs some call in operator/src names (the scanner must find each). */
  readonly verbs: readonly string[];
  /** Verbs no call names but the API server checks all the same; `why` says what asks for them. */
  readonly implied?: readonly string[];
  readonly scope: Scope;
  readonly feature: Feature;
  /** Limits the row to these objects (get, update, patch, delete only: create cannot be limited by name). */
  readonly resourceNames?: readonly string[];
  readonly why: string;
}

export const PERMISSIONS: readonly Permission[] = [
  {
    group: GROUP,
    resource: PLURAL,
    verbs: ['list', 'watch'],
    scope: 'watched',
    feature: 'always',
    why: 'the ApiKey informer (list, then watch)',
  },
  {
    group: GROUP,
    resource: `${PLURAL}/status`,
    verbs: ['patch'],
    scope: 'watched',
    feature: 'always',
    why: 'status written with server-side apply',
  },
  {
    group: GROUP,
    resource: `${PLURAL}/finalizers`,
    verbs: [],
    implied: ['update'],
    scope: 'watched',
    feature: 'always',
    why: 'owner references with blockOwnerDeletion from key Secrets and reader RBAC to their ApiKey (OwnerReferencesPermissionEnforcement)',
  },
  {
    group: GROUP,
    resource: ISSUER_PLURAL,
    verbs: ['list', 'watch'],
    scope: 'watched',
    feature: 'always',
    why: 'the ApiKeyIssuer informer',
  },
  {
    group: GROUP,
    resource: `${ISSUER_PLURAL}/status`,
    verbs: ['patch'],
    scope: 'watched',
    feature: 'always',
    why: 'issuer status written with server-side apply',
  },
  {
    group: GROUP,
    resource: `${ISSUER_PLURAL}/finalizers`,
    verbs: [],
    implied: ['update'],
    scope: 'watched',
    feature: 'always',
    why: 'owner references with blockOwnerDeletion from verifier Secrets to their issuer',
  },
  {
    group: '',
    resource: 'secrets',
    verbs: ['get', 'list', 'watch', 'patch', 'delete'],
    implied: ['create'],
    scope: 'watched',
    feature: 'always',
    why: 'key and verifier Secrets: informer (labelled ones only, but RBAC cannot limit by label), a live get for Secrets keyrotor does not label (conflicts), server-side apply (patch, and create for a new Secret), JSON patch to strip fields, delete to change a type',
  },
  {
    group: 'events.k8s.io',
    resource: 'events',
    verbs: ['create'],
    scope: 'watched',
    feature: 'always',
    why: 'an Event per step, on the ApiKey or issuer',
  },
  {
    group: '',
    resource: 'namespaces',
    verbs: ['list', 'watch'],
    scope: 'cluster',
    feature: 'always',
    why: 'issuers admit consumer namespaces by their labels, which may be outside the watched ones',
  },
  {
    group: 'authentication.k8s.io',
    resource: 'tokenreviews',
    verbs: ['create'],
    scope: 'cluster',
    feature: 'always',
    why: '/metrics: who sent the bearer token (observability/metrics-auth.ts)',
  },
  {
    group: 'authorization.k8s.io',
    resource: 'subjectaccessreviews',
    verbs: ['create'],
    scope: 'cluster',
    feature: 'always',
    why: '/metrics: may that user get nonResourceURL /metrics',
  },
  {
    group: '',
    resource: 'secrets',
    verbs: ['create'],
    scope: 'release',
    feature: 'always',
    why: 'the seal key Secret, made on first start (kube/seal-key.ts)',
  },
  {
    group: '',
    resource: 'secrets',
    verbs: ['get'],
    scope: 'release',
    feature: 'always',
    resourceNames: ['keyrotor-seal'],
    why: 'reading the seal key, and only it',
  },
  {
    group: 'rbac.authorization.k8s.io',
    resource: 'roles',
    verbs: ['list', 'watch', 'patch', 'delete'],
    implied: ['create'],
    scope: 'watched',
    feature: 'readers',
    why: 'spec.readers: a Role per ApiKey on exactly its Secret, applied server-side (create and patch), watched to repair edits',
  },
  {
    group: 'rbac.authorization.k8s.io',
    resource: 'rolebindings',
    verbs: ['list', 'watch', 'patch', 'delete'],
    implied: ['create'],
    scope: 'watched',
    feature: 'readers',
    why: "spec.readers: the RoleBinding of that Role to the readers' ServiceAccounts",
  },
  {
    group: GROUP,
    resource: READERS_PLURAL,
    verbs: ['list', 'watch', 'create', 'update', 'delete'],
    scope: 'watched',
    feature: 'readers',
    why: "the mount guard's parameters: one ApiKeyReaders object per namespace with keys that have readers (informer, create, replace, delete)",
  },
  {
    group: '',
    resource: 'pods',
    verbs: ['list'],
    scope: 'watched',
    feature: 'readers',
    why: "Pods that use a key's Secret without being its readers (admitted before the guard was on)",
  },
  {
    group: '',
    resource: 'namespaces',
    verbs: ['patch'],
    scope: 'watched-namespaces',
    feature: 'readers',
    why: 'the keyrotor.dev/mount-guard label on namespaces holding keys with readers',
  },
  {
    group: 'apps',
    resource: 'deployments',
    verbs: ['list', 'watch', 'patch'],
    scope: 'watched',
    feature: 'workloadRestarts',
    why: "rolloutRestartTargets and keyrotor.dev/reload: the pod template's restartedAt annotation, as kubectl rollout restart; the informer that reports missing targets and finds reload-annotated workloads (controller/workload-caches.ts)",
  },
  {
    group: 'apps',
    resource: 'statefulsets',
    verbs: ['list', 'watch', 'patch'],
    scope: 'watched',
    feature: 'workloadRestarts',
    why: 'rolloutRestartTargets and keyrotor.dev/reload: restart, and the informer',
  },
  {
    group: 'apps',
    resource: 'daemonsets',
    verbs: ['list', 'watch', 'patch'],
    scope: 'watched',
    feature: 'workloadRestarts',
    why: 'rolloutRestartTargets and keyrotor.dev/reload: restart, and the informer',
  },
  {
    group: ROLLOUT_GROUP,
    resource: ROLLOUT_PLURAL,
    verbs: ['list', 'watch', 'patch'],
    scope: 'watched',
    feature: 'workloadRestarts',
    why: 'Argo Rollouts as restart targets: spec.restartAt (merge patch), the informer, and the list of one that tells whether the CRD is installed',
  },
  {
    group: 'coordination.k8s.io',
    resource: 'leases',
    verbs: ['create'],
    scope: 'release',
    feature: 'leaderElection',
    why: 'the leader Lease, made by the first replica',
  },
  {
    group: 'coordination.k8s.io',
    resource: 'leases',
    verbs: ['get', 'update'],
    scope: 'release',
    feature: 'leaderElection',
    resourceNames: [RELEASE_FULLNAME],
    why: 'acquiring and renewing that Lease, and only it',
  },
];

/** What the chart turns on: the values that decide which rows are granted, and where. */
export interface GrantValues {
  readonly releaseNamespace: string;
  readonly fullname: string;
  /** Empty: every namespace. */
  readonly watchNamespaces: readonly string[];
  readonly readers: boolean;
  readonly workloadRestarts: boolean;
  readonly leaderElection: boolean;
}

/**
 * The grants as flat tuples "where|group|resource|verb|name": where is `cluster` or a namespace, name
 * `*` when not limited. Exactly what the chart's bound Roles and ClusterRoles must add up to.
 */
export function grantTuples(values: GrantValues): Set<string> {
  const on: Record<Feature, boolean> = {
    always: true,
    readers: values.readers,
    workloadRestarts: values.workloadRestarts,
    leaderElection: values.leaderElection,
  };
  const all = values.watchNamespaces.length === 0;
  const tuples = new Set<string>();
  for (const row of PERMISSIONS) {
    if (!on[row.feature]) continue;
    const names = (row.resourceNames ?? ['*']).map((name) =>
      name === RELEASE_FULLNAME ? values.fullname : name,
    );
    const places: { where: string; names: readonly string[] }[] =
      row.scope === 'cluster' || (all && row.scope !== 'release')
        ? [{ where: 'cluster', names }]
        : row.scope === 'release'
          ? [{ where: values.releaseNamespace, names }]
          : row.scope === 'watched-namespaces'
            ? [{ where: 'cluster', names: values.watchNamespaces }]
            : values.watchNamespaces.map((where) => ({ where, names }));
    for (const { where, names: limited } of places)
      for (const verb of [...row.verbs, ...(row.implied ?? [])])
        for (const name of limited) tuples.add([where, row.group, row.resource, verb, name].join('|'));
  }
  return tuples;
}
