// Names that are API: users, charts and workloads depend on them. Change them only with a new API version.

export const GROUP = 'keyrotor.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ApiKey';
export const PLURAL = 'apikeys';
export const ISSUER_KIND = 'ApiKeyIssuer';
export const ISSUER_PLURAL = 'apikeyissuers';
/** The mount guard's parameters: one object per namespace, written only by keyrotor. */
export const READERS_KIND = 'ApiKeyReaders';
export const READERS_PLURAL = 'apikeyreaders';
/** The name of the ApiKeyReaders object of a namespace (the policy binding's paramRef). */
export const READERS_OBJECT_NAME = 'keyrotor-readers';

/** The field manager of every write, so managedFields tell who owns what. */
export const FIELD_MANAGER = 'keyrotor';
/** The field manager of the readers controller's own ApiKey condition (MountGuard). */
export const READERS_FIELD_MANAGER = 'keyrotor-readers';
/** The field manager of the workloads controller's own ApiKey condition (RestartTargetsReady). */
export const WORKLOADS_FIELD_MANAGER = 'keyrotor-workloads';
/** events.k8s.io/v1 reportingController. */
export const REPORTING_CONTROLLER = 'keyrotor.dev/operator';

export const SECRET_TYPE = 'keyrotor.dev/api-key';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'keyrotor';
export const LABEL_API_KEY = 'keyrotor.dev/apikey';
/** On a verifier Secret: the ApiKeyIssuer it belongs to. */
export const LABEL_ISSUER = 'keyrotor.dev/apikeyissuer';
/** The type of the Secrets that hold an issuer's verifier document (hashes only). */
export const VERIFIER_SECRET_TYPE = 'keyrotor.dev/verifier';
/** Selects the Secrets keyrotor caches: never every Secret in the cluster. */
export const MANAGED_SECRET_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}`;

/** On a Secret: when its current key was issued (RFC 3339). */
export const ANNOTATION_ISSUED_AT = 'keyrotor.dev/issued-at';
/** On a Secret: why its current key was issued (a RotationReason, or Issue). */
export const ANNOTATION_ISSUE_REASON = 'keyrotor.dev/issue-reason';
/** On a Secret: the last value of the ApiKey's rotate annotation that was acted on. */
export const ANNOTATION_ROTATE_HANDLED = 'keyrotor.dev/rotate-handled';
/** On a Secret whose key was revoked: the revoked key's id (the Secret then holds no key). */
export const ANNOTATION_REVOKED_KEY_ID = 'keyrotor.dev/revoked-key-id';
/** On a Secret: the key sequence, one more with every change of key (docs/adr/0002-sealed-key-secrets.md). */
export const ANNOTATION_KEY_SEQUENCE = 'keyrotor.dev/key-sequence';
/** On a Secret: keyrotor's seal (an HMAC under its own key) over the fields that decide validity. */
export const ANNOTATION_SEAL = 'keyrotor.dev/seal';
/** On a Secret: the data keys keyrotor rendered from spec.secretTemplate.data, comma-separated (sealed). */
export const ANNOTATION_RENDERED_DATA = 'keyrotor.dev/rendered-data';
/** On an existing Secret keyrotor does not own: "true" lets keyrotor take it over (and replace its data). */
export const ANNOTATION_ADOPT = 'keyrotor.dev/adopt';
/** On an ApiKey: any new value asks for one rotation. */
export const ANNOTATION_ROTATE = 'keyrotor.dev/rotate';
/** On the pod template of a workload restarted after a rotation, as kubectl rollout restart does. */
export const ANNOTATION_RESTARTED_AT = 'keyrotor.dev/restartedAt';
/**
 * On a Deployment, StatefulSet, DaemonSet or Argo Rollout: "true" restarts it whenever a key Secret of
 * its namespace that its pod template uses gets a new key (the workload's side of rolloutRestartTargets).
 */
export const ANNOTATION_RELOAD = 'keyrotor.dev/reload';

/** Argo Rollouts' Rollout, a restart target kind when its CRD is installed (restarted by spec.restartAt). */
export const ROLLOUT_GROUP = 'argoproj.io';
export const ROLLOUT_VERSION = 'v1alpha1';
export const ROLLOUT_KIND = 'Rollout';
export const ROLLOUT_PLURAL = 'rollouts';

/**
 * On a Namespace that holds keys with readers, set by keyrotor: the mount guard's binding there
 * refuses every Pod while the namespace's ApiKeyReaders object is missing (parameterNotFoundAction Deny).
 */
export const LABEL_MOUNT_GUARD = 'keyrotor.dev/mount-guard';
export const MOUNT_GUARD_ENFORCED = 'enforced';

/** Secret data keys. */
export const DATA_API_KEY = 'api-key';
export const DATA_KEY_ID = 'key-id';
export const DATA_SCOPES = 'scopes';
export const DATA_EXPIRES_AT = 'expires-at';
export const DATA_PREVIOUS_API_KEY = 'previous-api-key';
export const DATA_PREVIOUS_KEY_ID = 'previous-key-id';
export const DATA_PREVIOUS_EXPIRES_AT = 'previous-expires-at';

/** Label and annotation prefixes a secretTemplate may not set: they are keyrotor's. */
export const RESERVED_METADATA_PREFIXES = ['keyrotor.dev/', LABEL_MANAGED_BY] as const;
