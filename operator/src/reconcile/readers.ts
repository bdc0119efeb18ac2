import { LABEL_API_KEY, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import { controllerReference, type ControllerReference } from './owner.ts';
import { secretNameOf } from './spec.ts';

/** The per-namespace ConfigMap the mount policy reads (paramRef): Secret name -> "apiKey;sa1,sa2". */
export const READERS_CONFIGMAP = 'keyrotor-readers';

export interface ReaderRbac {
  readonly role: {
    apiVersion: 'rbac.authorization.k8s.io/v1';
    kind: 'Role';
    metadata: ObjectMetadata;
    rules: { apiGroups: string[]; resources: string[]; resourceNames: string[]; verbs: string[] }[];
  };
  readonly binding: {
    apiVersion: 'rbac.authorization.k8s.io/v1';
    kind: 'RoleBinding';
    metadata: ObjectMetadata;
    roleRef: { apiGroup: string; kind: 'Role'; name: string };
    subjects: { kind: 'ServiceAccount'; name: string; namespace: string }[];
  };
}

interface ObjectMetadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ownerReferences: ControllerReference[];
}

/** The name of the Role and RoleBinding that let an ApiKey's readers read its Secret. */
export function readerRbacName(apiKey: ApiKey): string {
  return `keyrotor:${apiKey.metadata.name}:readers`;
}

export function readersOf(apiKey: ApiKey): readonly string[] {
  return [...new Set(apiKey.spec.readers?.serviceAccounts ?? [])].sort();
}

/**
 * RBAC that lets exactly the listed ServiceAccounts get (and watch, to follow rotations) exactly this
 * Secret, owned by the ApiKey. Undefined when the ApiKey lists no readers: then there is nothing to grant.
 */
export function desiredReaderRbac(apiKey: ApiKey): ReaderRbac | undefined {
  const readers = readersOf(apiKey);
  if (readers.length === 0 || apiKey.spec.revoked === true) return undefined;
  const { namespace, name } = apiKey.metadata;
  const metadata: ObjectMetadata = {
    name: readerRbacName(apiKey),
    namespace,
    labels: { [LABEL_MANAGED_BY]: MANAGED_BY_VALUE, [LABEL_API_KEY]: name },
    ownerReferences: [controllerReference(apiKey)],
  };
  return {
    role: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata,
      rules: [
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: [secretNameOf(apiKey)],
          verbs: ['get', 'watch'],
        },
      ],
    },
    binding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: metadata.name },
      subjects: readers.map((reader) => ({ kind: 'ServiceAccount', name: reader, namespace })),
    },
  };
}

/** True when the observed Role or RoleBinding differs from what keyrotor wants (drift or a change). */
export function rbacDiffers(
  desired: ReaderRbac,
  role: { rules?: unknown } | undefined,
  binding: { roleRef?: unknown; subjects?: unknown } | undefined,
): boolean {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const normalise = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as unknown;
  const rules = (
    normalise(role?.rules) as
      { apiGroups?: string[]; resources?: string[]; resourceNames?: string[]; verbs?: string[] }[] | null
  )?.map(({ apiGroups, resources, resourceNames, verbs }) => ({
    apiGroups,
    resources,
    resourceNames,
    verbs,
  }));
  const subjects = (
    normalise(binding?.subjects) as { kind?: string; name?: string; namespace?: string }[] | null
  )?.map(({ kind, name, namespace }) => ({ kind, name, namespace }));
  const roleRef = normalise(binding?.roleRef) as { apiGroup?: string; kind?: string; name?: string } | null;
  return (
    role === undefined ||
    binding === undefined ||
    !same(rules, desired.role.rules) ||
    !same(subjects, desired.binding.subjects) ||
    !same(
      roleRef && { apiGroup: roleRef.apiGroup, kind: roleRef.kind, name: roleRef.name },
      desired.binding.roleRef,
    )
  );
}

/**
 * What the namespace's readers ConfigMap should hold, from every ApiKey in it: for each Secret whose
 * ApiKey lists readers, "apiKey;reader1,reader2". Secrets of ApiKeys without readers are absent, so
 * any workload may mount them, as before keyrotor.
 */
export function desiredReadersData(apiKeys: readonly ApiKey[]): Record<string, string> {
  const data: Record<string, string> = {};
  for (const apiKey of [...apiKeys].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const readers = readersOf(apiKey);
    if (readers.length === 0 || apiKey.metadata.deletionTimestamp !== undefined) continue;
    data[secretNameOf(apiKey)] = `${apiKey.metadata.name};${readers.join(',')}`;
  }
  return data;
}
