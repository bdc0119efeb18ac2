/**
 * Secret replicators: controllers that copy a Secret into other namespaces (or clusters) when it carries
 * one of their labels or annotations. A key Secret copied that way escapes its readers, its namespace's
 * RBAC and revocation (the copies are not keyrotor's), so an ApiKey's secretTemplate may not set those
 * keys unless the cluster allows them. The admission policy `keyrotor-replicators`
 * (policies/replicators-policy.yaml) holds the same table; a unit test keeps the two identical.
 */

/** Where a replicator looks for its switch on the Secret. */
export type MetadataField = 'labels' | 'annotations';

export interface ReplicatorKey {
  /** A key, or a prefix ending in "/" that covers every key under it. */
  readonly pattern: string;
  readonly field: MetadataField;
  /** The replicator, for the message. */
  readonly replicator: string;
}

/**
 * Keys that switch replication on. Only the keys a replicator reads on the source object: the keys it
 * writes on its copies (for example kubed.appscode.com/origin) do nothing on a source, but a whole
 * prefix is refused where every key under it belongs to the replicator.
 */
export const REPLICATOR_KEYS: readonly ReplicatorKey[] = [
  // emberstack/kubernetes-reflector: reflection-allowed(-namespaces), reflection-auto-enabled, ...
  { pattern: 'reflector.v1.k8s.emberstack.com/', field: 'annotations', replicator: 'emberstack Reflector' },
  // mittwald/kubernetes-replicator: replicate-to, replicate-to-matching, replication-allowed, ...
  {
    pattern: 'replicator.v1.mittwald.de/',
    field: 'annotations',
    replicator: 'mittwald kubernetes-replicator',
  },
  // AppsCode Config Syncer (kubed): sync, sync-contexts (other clusters).
  { pattern: 'kubed.appscode.com/', field: 'annotations', replicator: 'Config Syncer (kubed)' },
  // Hierarchical Namespace Controller: with Secrets in AllowPropagate mode these select the copies.
  { pattern: 'propagate.hnc.x-k8s.io/select', field: 'annotations', replicator: 'HNC' },
  { pattern: 'propagate.hnc.x-k8s.io/treeSelect', field: 'annotations', replicator: 'HNC' },
  { pattern: 'propagate.hnc.x-k8s.io/all', field: 'annotations', replicator: 'HNC' },
  // cybozu-go/accurate: propagate=create|update copies into sub-namespaces.
  { pattern: 'accurate.cybozu.com/propagate', field: 'annotations', replicator: 'Accurate' },
  { pattern: 'accurate.cybozu.com/propagate-generated', field: 'annotations', replicator: 'Accurate' },
  // Synator: sync=yes, include-namespaces.
  { pattern: 'synator/', field: 'annotations', replicator: 'Synator' },
  // Rancher project-scoped Secrets: copied into every namespace of the project.
  { pattern: 'management.cattle.io/project-scoped-secret', field: 'labels', replicator: 'Rancher' },
];

/** An exact key, or a prefix ending in "/" covering every key under it. */
function covers(pattern: string, key: string): boolean {
  return pattern.endsWith('/') ? key.startsWith(pattern) : key === pattern;
}

/**
 * One message per label or annotation of a secretTemplate that switches on a Secret replicator and
 * that `allowed` does not cover (entries as in the chart value admissionPolicies.replicators.allowedKeys:
 * a key, or a prefix ending in "/"). Empty when there is none. Each message names the field and the key,
 * never a value.
 */
export function replicatorKeys(
  labels: Readonly<Record<string, string>> | undefined,
  annotations: Readonly<Record<string, string>> | undefined,
  allowed: readonly string[],
): string[] {
  const messages: string[] = [];
  for (const [field, metadata] of [
    ['labels', labels],
    ['annotations', annotations],
  ] as const) {
    for (const key of Object.keys(metadata ?? {}).sort()) {
      const match = REPLICATOR_KEYS.find((entry) => entry.field === field && covers(entry.pattern, key));
      if (match === undefined || allowed.some((entry) => covers(entry, key))) continue;
      messages.push(
        `spec.secretTemplate.${field}: ${key} switches on a Secret replicator (${match.replicator}), ` +
          'which would copy the key into other namespaces beyond its readers and revocation; remove it, ' +
          'or have the cluster allow it (chart value admissionPolicies.replicators.allowedKeys)',
      );
    }
  }
  return messages;
}
