// The mount guard, the pure part: which Secrets of a namespace the keyrotor-readers admission policy
// guards, and which running Pods use a guarded Secret without being its readers.
import type { ApiKey, ReadersEntry } from '../api/types.ts';
import { findCondition, type ConditionUpdate } from './conditions.ts';
import { Reason } from './reasons.ts';
import { readersOf } from './readers.ts';
import { isControlledBy, type SecretLike } from './secret.ts';
import { secretNameOf } from './spec.ts';

/** The condition the readers controller keeps on ApiKeys that list readers. */
export const MOUNT_GUARD = 'MountGuard';

/**
 * The entries of a namespace's ApiKeyReaders object, one per guarded Secret, sorted by name.
 *
 * An ApiKey that lists readers guards its Secret while keyrotor's cache has it controlled by this
 * ApiKey, and from the moment keyrotor is about to write its key into it (`pending`: the ApiKey
 * controller's decision to write came after the ownership check), so that no Pod of another
 * ServiceAccount can be admitted with the Secret in the moment after. An ApiKey never guards a Secret
 * keyrotor does not own, nor one it has not decided to write: a tenant's ApiKey that names another
 * team's Secret (refused as SecretConflict, or stuck before the ownership check on an issuer or spec
 * problem) cannot refuse other workloads the use of it. Two ApiKeys about to write one Secret guard it
 * together: only ServiceAccounts both list may use it (refusing is the safe side).
 *
 * `secretOf` returns the Secret of that name as keyrotor's cache has it (undefined when it has none).
 */
export function desiredGuardEntries(
  apiKeys: readonly ApiKey[],
  secretOf: (apiKey: ApiKey) => SecretLike | undefined,
  pending: (apiKey: ApiKey) => boolean = () => false,
): ReadersEntry[] {
  const entries = new Map<string, { apiKeys: string[]; serviceAccounts: string[] }>();
  for (const apiKey of [...apiKeys].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const readers = readersOf(apiKey);
    if (readers.length === 0 || !guards(apiKey, secretOf(apiKey), pending(apiKey))) continue;
    const secretName = secretNameOf(apiKey);
    const entry = entries.get(secretName);
    if (entry === undefined) {
      entries.set(secretName, { apiKeys: [apiKey.metadata.name], serviceAccounts: [...readers] });
    } else {
      entry.apiKeys.push(apiKey.metadata.name);
      entry.serviceAccounts = entry.serviceAccounts.filter((reader) => readers.includes(reader));
    }
  }
  return [...entries]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([secretName, entry]) => ({
      secretName,
      apiKey: namesOf(entry.apiKeys),
      serviceAccounts: entry.serviceAccounts,
    }));
}

function guards(apiKey: ApiKey, secret: SecretLike | undefined, pending: boolean): boolean {
  if (secret !== undefined) return isControlledBy(secret, apiKey);
  if (!pending || apiKey.metadata.deletionTimestamp !== undefined) return false;
  return findCondition(apiKey.status?.conditions, 'Ready')?.reason !== Reason.SecretConflict;
}

/** The most ApiKey names an entry carries: the field is for people, and bounded (1024 characters). */
const MAX_ENTRY_NAMES = 3;

/** "a,b,c" or "a,b,c and 4 more": never longer than the schema allows, whatever names share a Secret. */
function namesOf(apiKeys: readonly string[]): string {
  const named = apiKeys.slice(0, MAX_ENTRY_NAMES).join(',');
  const more = apiKeys.length - MAX_ENTRY_NAMES;
  return more > 0 ? `${named} and ${more} more` : named;
}

/** Whether two entry lists say the same (the order is the one desiredGuardEntries gives). */
export function sameEntries(a: readonly ReadersEntry[], b: readonly ReadersEntry[] | undefined): boolean {
  const normal = (entries: readonly ReadersEntry[]) =>
    JSON.stringify(
      entries.map((entry) => [
        entry.secretName,
        entry.apiKey ?? '',
        [...(entry.serviceAccounts ?? [])].sort(),
      ]),
    );
  return normal(a) === normal([...(b ?? [])].sort((x, y) => x.secretName.localeCompare(y.secretName)));
}

/** The parts of a Pod keyrotor looks at. */
export interface PodLike {
  metadata?: { name?: string };
  spec?: PodSpecLike;
}

interface ContainerLike {
  env?: { valueFrom?: { secretKeyRef?: { name?: string } } }[];
  envFrom?: { secretRef?: { name?: string } }[];
}

/** A volume source that names a Secret the kubelet fetches for a driver (`secretRef`). */
type DriverSecret = { secretRef?: { name?: string } } | undefined;

interface VolumeLike {
  secret?: { secretName?: string };
  projected?: { sources?: { secret?: { name?: string } }[] };
  csi?: { nodePublishSecretRef?: { name?: string } };
  flexVolume?: DriverSecret;
  cephfs?: DriverSecret;
  rbd?: DriverSecret;
  iscsi?: DriverSecret;
  azureFile?: { secretName?: string };
}

interface PodSpecLike {
  serviceAccountName?: string;
  volumes?: VolumeLike[];
  imagePullSecrets?: { name?: string }[];
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  ephemeralContainers?: ContainerLike[];
}

/**
 * The names of the Secrets a pod spec uses: volumes (secret, projected, and the drivers' secretRefs),
 * imagePullSecrets, env and envFrom of every container: what the keyrotor-readers policy looks at.
 */
export function secretsUsedBy(spec: PodSpecLike | undefined): Set<string> {
  const names: (string | undefined)[] = (spec?.imagePullSecrets ?? []).map((secret) => secret.name);
  for (const volume of spec?.volumes ?? []) names.push(...secretsOfVolume(volume));
  const containers = [
    ...(spec?.containers ?? []),
    ...(spec?.initContainers ?? []),
    ...(spec?.ephemeralContainers ?? []),
  ];
  for (const container of containers) names.push(...secretsOfContainer(container));
  return new Set(names.filter((name): name is string => typeof name === 'string' && name !== ''));
}

function secretsOfVolume(volume: VolumeLike): (string | undefined)[] {
  return [
    volume.secret?.secretName,
    ...(volume.projected?.sources ?? []).map((source) => source.secret?.name),
    volume.csi?.nodePublishSecretRef?.name,
    ...[volume.flexVolume, volume.cephfs, volume.rbd, volume.iscsi].map((driver) => driver?.secretRef?.name),
    volume.azureFile?.secretName,
  ];
}

function secretsOfContainer(container: ContainerLike): (string | undefined)[] {
  return [
    ...(container.env ?? []).map((variable) => variable.valueFrom?.secretKeyRef?.name),
    ...(container.envFrom ?? []).map((source) => source.secretRef?.name),
  ];
}

/** A running Pod that uses a guarded Secret as a ServiceAccount the entry does not list. */
export interface UnlistedConsumer {
  readonly pod: string;
  readonly serviceAccount: string;
}

/**
 * The Pods that use `secretName` without being its readers, sorted by name: Pods created before the
 * key existed, or while the guard was off (the policy only sees new Pods).
 */
export function unlistedConsumers(
  pods: readonly PodLike[],
  secretName: string,
  readers: readonly string[],
): UnlistedConsumer[] {
  const found: UnlistedConsumer[] = [];
  for (const pod of pods) {
    const serviceAccount = pod.spec?.serviceAccountName || 'default';
    if (readers.includes(serviceAccount) || !secretsUsedBy(pod.spec).has(secretName)) continue;
    found.push({ pod: pod.metadata?.name ?? '', serviceAccount });
  }
  return found.sort((a, b) => a.pod.localeCompare(b.pod));
}

/** The most Pods a MountGuard message names; the rest are counted. */
const MAX_NAMED = 10;

/** The MountGuard condition of an ApiKey whose Secret has these unlisted consumers. */
export function mountGuardCondition(
  secretName: string,
  consumers: readonly UnlistedConsumer[],
): ConditionUpdate {
  if (consumers.length === 0) {
    return {
      type: MOUNT_GUARD,
      status: 'True',
      reason: Reason.Guarded,
      message: `only the ServiceAccounts in spec.readers.serviceAccounts may use Secret ${secretName}, and no running Pod uses it as another`,
    };
  }
  return {
    type: MOUNT_GUARD,
    status: 'False',
    reason: Reason.UnlistedConsumers,
    message:
      `${describeConsumers(consumers)} use Secret ${secretName} as ServiceAccounts not in ` +
      'spec.readers.serviceAccounts; they started before the key existed or while the mount guard was off. ' +
      'Run them as a listed ServiceAccount, or add theirs to spec.readers.serviceAccounts.',
  };
}

/** The MountGuard condition of an ApiKey that had readers and lists none now. */
export function unguardedCondition(secretName: string): ConditionUpdate {
  return {
    type: MOUNT_GUARD,
    status: 'False',
    reason: Reason.NoReaders,
    message: `spec.readers lists no ServiceAccounts: any workload of the namespace may use Secret ${secretName}`,
  };
}

/** "Pods a (sa x), b (sa y) and 3 more". */
export function describeConsumers(consumers: readonly UnlistedConsumer[]): string {
  const named = consumers
    .slice(0, MAX_NAMED)
    .map((consumer) => `${consumer.pod} (ServiceAccount ${consumer.serviceAccount})`);
  const more = consumers.length - named.length;
  return `${consumers.length === 1 ? 'Pod' : 'Pods'} ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}
