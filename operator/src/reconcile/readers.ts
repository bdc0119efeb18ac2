import { LABEL_API_KEY, LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import { READY, findCondition } from './conditions.ts';
import { controllerReference, type ControllerReference } from './owner.ts';
import { Reason } from './reasons.ts';
import { isControlledBy, type SecretLike } from './secret.ts';
import { secretNameOf } from './spec.ts';

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
export function readerRbacName(apiKey: { readonly metadata: { readonly name: string } }): string {
  return `keyrotor:${apiKey.metadata.name}:readers`;
}

export function readersOf(apiKey: ApiKey): readonly string[] {
  return [...new Set(apiKey.spec.readers?.serviceAccounts ?? [])].sort();
}

/**
 * Ready=False reasons after which the Secret still holds the key the status records: the spec or a
 * Secret write was refused, and the current key was left as it was. Any other Ready=False reason
 * (SecretConflict, NotPermitted, IssuerNotFound, Revoked, and any reason added later) grants nothing.
 */
const KEY_KEPT_REASONS: ReadonlySet<string> = new Set([Reason.InvalidSpec, Reason.SecretRejected]);

/**
 * Whether readers may be granted this ApiKey's Secret: the Secret is keyrotor's for this very ApiKey
 * (its controller ownerReference has the ApiKey's uid) and, by the ApiKey's status, holds a live key.
 * Grants follow ownership, never spec.secretName alone: a Secret someone else owns, or that keyrotor
 * does not own at all, is never granted, whatever an ApiKey says. `secret` is the Secret of that name
 * as keyrotor's cache has it (undefined when absent, or not labelled as keyrotor's).
 */
export function holdsLiveKey(apiKey: ApiKey, secret: SecretLike | undefined): boolean {
  if (apiKey.metadata.deletionTimestamp !== undefined || apiKey.spec.revoked === true) return false;
  if (secret === undefined || !isControlledBy(secret, apiKey)) return false;
  const status = apiKey.status;
  if (status?.keyId === undefined) return false;
  const ready = findCondition(status.conditions, READY);
  if (ready === undefined) return false;
  return ready.status === 'True' || (ready.status === 'False' && KEY_KEPT_REASONS.has(ready.reason));
}

/**
 * RBAC that lets exactly the listed ServiceAccounts get (and watch, to follow rotations) exactly this
 * Secret, owned by the ApiKey. Undefined, so that whatever was granted before is removed, when the
 * ApiKey lists no readers, is revoked or being deleted, or does not own a live key (`ownsLiveKey`, from
 * holdsLiveKey).
 */
export function desiredReaderRbac(apiKey: ApiKey, ownsLiveKey: boolean): ReaderRbac | undefined {
  const readers = readersOf(apiKey);
  if (readers.length === 0 || !ownsLiveKey || !grantable(apiKey)) return undefined;
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

/** Neither revoked nor being deleted: the checks holdsLiveKey makes on the spec, kept here too. */
function grantable(apiKey: ApiKey): boolean {
  return apiKey.spec.revoked !== true && apiKey.metadata.deletionTimestamp === undefined;
}
