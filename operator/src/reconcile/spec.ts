import { RESERVED_METADATA_PREFIXES } from '../api/names.ts';
import { ENVIRONMENTS, type ApiKey, type Environment } from '../api/types.ts';
import { DEFAULT_KEY_BITS, DEFAULT_KEY_PREFIX, validateKeyOptions } from '../keys/format.ts';
import { isTimeZone, longestGap, parseSchedule, type Schedule } from '../schedule/cron.ts';
import { formatDuration, parseDuration } from '../schedule/duration.ts';
import { replicatorKeys } from './replicators.ts';
import { checkDataTemplates, type DataTemplate } from './secret-data.ts';

const DEFAULT_EXPIRES_AFTER = '90d';
/**
 * rotation.gracePeriod when the spec leaves it out. A Pod sees a rotated Secret only after its kubelet's
 * next sync (the sync period, 1m by default, plus the Secret cache's delay), and an API that checks keys
 * against a verifier learns of the new key one verifier batch and another kubelet sync later: about 2-3
 * minutes at worst with default kubelets. 10m covers that three times over, and stays short enough that a
 * key rotated away (not revoked: revocation never waits) stops working soon. docs/rotation.md draws it.
 */
export const DEFAULT_GRACE_PERIOD = '10m';
const SCOPE_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*:[a-z*][a-z0-9-]*$/;

/** An ApiKey's spec with defaults applied and every value checked: what the decision works from. */
export interface ResolvedSpec {
  readonly secretName: string;
  readonly environment: Environment;
  readonly scopes: readonly string[];
  readonly keyPrefix: string;
  readonly keyBits: number;
  readonly expiresAfterMs: number;
  readonly rotateBeforeMs: number;
  readonly gracePeriodMs: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** The cron schedule of extra rotations, if any. */
  readonly schedule: Schedule | undefined;
  readonly revoked: boolean;
  readonly revocationReason: string | undefined;
  readonly restartTargets: readonly RestartTarget[];
  /** spec.secretTemplate.data, parsed and sorted by data key (reconcile/secret-data.ts). */
  readonly dataTemplates: readonly DataTemplate[];
}

/** A workload kind keyrotor restarts: the apps kinds, and Argo Rollouts' Rollout when installed. */
export type RestartKind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'Rollout';

export interface RestartTarget {
  readonly kind: RestartKind;
  readonly name: string;
}

export const RESTART_KINDS: readonly RestartKind[] = ['Deployment', 'StatefulSet', 'DaemonSet', 'Rollout'];
const YEAR_MS = 366 * 86_400_000;

const gapCache = new Map<string, number | undefined>();
const GAP_CACHE_LIMIT = 1_000;

/**
 * The longest gap of a schedule over the coming year walks hundreds of runs: too slow to repeat on
 * every reconcile of thousands of keys sharing a schedule. It changes slowly, so it is computed once a
 * day per schedule and time zone.
 */
function cachedLongestGap(
  expression: string,
  timeZone: string | undefined,
  schedule: Schedule,
  now: Date,
): number | undefined {
  const key = `${expression}\n${timeZone ?? 'UTC'}\n${Math.floor(now.getTime() / 86_400_000)}`;
  if (gapCache.has(key)) return gapCache.get(key);
  const gap = longestGap(schedule, now, YEAR_MS);
  if (gapCache.size >= GAP_CACHE_LIMIT) gapCache.clear();
  gapCache.set(key, gap);
  return gap;
}

function checkSchedule(
  spec: ApiKey['spec'],
  expiresAfterMs: number,
  now: Date,
  problems: string[],
): Schedule | undefined {
  const expression = spec.rotation?.schedule;
  if (expression === undefined) {
    if (spec.rotation?.timeZone !== undefined && !isTimeZone(spec.rotation.timeZone)) {
      problems.push(`rotation.timeZone "${spec.rotation.timeZone}" is not an IANA time zone`);
    }
    return undefined;
  }
  const parsed = parseSchedule(expression, spec.rotation?.timeZone);
  if (!parsed.ok) {
    problems.push(parsed.message);
    return undefined;
  }
  const gap = cachedLongestGap(expression, spec.rotation?.timeZone, parsed.schedule, now);
  if (gap === undefined) {
    problems.push(`rotation.schedule "${expression}" never runs`);
  } else if (gap > expiresAfterMs) {
    problems.push(
      `rotation.schedule "${expression}" can go ${formatDuration(gap)} without running, longer than expiresAfter (${formatDuration(expiresAfterMs)}): keys would expire between rotations`,
    );
  }
  return parsed.schedule;
}

function checkRestartTargets(spec: ApiKey['spec'], problems: string[]): RestartTarget[] {
  const targets = spec.rolloutRestartTargets ?? [];
  for (const target of targets) {
    if (!(RESTART_KINDS as readonly string[]).includes(target.kind)) {
      problems.push(
        `rolloutRestartTargets: kind "${target.kind}" must be Deployment, StatefulSet, DaemonSet or Rollout`,
      );
    }
  }
  return targets as RestartTarget[];
}

export type SpecResult = { ok: true; spec: ResolvedSpec } | { ok: false; message: string };

// Kubernetes' own rules for label and annotation keys (an optional DNS prefix, then a name) and label
// values. The CRD leaves them to the controller: written as CEL they would cost more than the budget.
const QUALIFIED_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const MAX_ANNOTATIONS_BYTES = 256 * 1024;

function checkTemplate(
  labels: Record<string, string>,
  annotations: Record<string, string>,
  problems: string[],
): void {
  for (const [key, value] of Object.entries(labels)) {
    if (!QUALIFIED_NAME.test(key)) problems.push(`secretTemplate.labels: "${key}" is not a valid label key`);
    else if (!LABEL_VALUE.test(value)) {
      problems.push(
        `secretTemplate.labels: the value of "${key}" must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
      );
    }
  }
  for (const key of Object.keys(annotations)) {
    if (!QUALIFIED_NAME.test(key))
      problems.push(`secretTemplate.annotations: "${key}" is not a valid annotation key`);
  }
  const size = Object.entries(annotations).reduce(
    (total, [key, value]) => total + key.length + value.length,
    0,
  );
  if (size > MAX_ANNOTATIONS_BYTES)
    problems.push('secretTemplate.annotations are larger than 256 KiB in total');
  const reserved = [...reservedKeys(labels), ...reservedKeys(annotations)];
  if (reserved.length > 0)
    problems.push(`secretTemplate may not set ${reserved.join(', ')}: keyrotor sets those itself`);
}

function reservedKeys(map: Record<string, string> | undefined): string[] {
  return Object.keys(map ?? {}).filter((key) =>
    RESERVED_METADATA_PREFIXES.some((prefix) => key.startsWith(prefix)),
  );
}

function checkScopes(scopes: readonly string[], problems: string[]): void {
  if (scopes.length === 0) problems.push('scopes must list at least one scope');
  const badScopes = scopes.filter((scope) => !SCOPE_PATTERN.test(scope));
  if (badScopes.length > 0) {
    problems.push(
      `scopes ${badScopes.map((scope) => `"${scope}"`).join(', ')} must look like resource:action`,
    );
  }
  if (new Set(scopes).size !== scopes.length) problems.push('scopes must not repeat');
}

interface Lifetimes {
  readonly expiresAfterMs: number;
  readonly rotateBeforeMs: number;
  readonly gracePeriodMs: number;
}

function checkLifetimes(spec: ApiKey['spec'], problems: string[]): Lifetimes {
  const duration = (field: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const ms = parseDuration(text);
    if (ms !== undefined) return ms;
    problems.push(`${field} "${text}" is not a duration such as 90d, 720h or 1h30m`);
    return fallback;
  };
  const expiresAfterMs = duration('expiresAfter', spec.expiresAfter ?? DEFAULT_EXPIRES_AFTER, 0);
  if (expiresAfterMs < 3_600_000) problems.push('expiresAfter must be at least 1h');
  const rotateBeforeMs = duration(
    'rotation.rotateBefore',
    spec.rotation?.rotateBefore,
    Math.floor(expiresAfterMs / 3),
  );
  if (rotateBeforeMs >= expiresAfterMs) {
    problems.push(
      `rotation.rotateBefore (${formatDuration(rotateBeforeMs)}) must be shorter than expiresAfter`,
    );
  }
  const gracePeriodMs = duration(
    'rotation.gracePeriod',
    spec.rotation?.gracePeriod ?? DEFAULT_GRACE_PERIOD,
    0,
  );
  if (gracePeriodMs >= expiresAfterMs)
    problems.push('rotation.gracePeriod must be shorter than expiresAfter');
  return { expiresAfterMs, rotateBeforeMs, gracePeriodMs };
}

/**
 * Applies defaults and re-checks what the CRD's schema checks. The schema is the first gate, but an
 * older CRD, a schema change ratcheted over stored objects, or a server without CEL can let bad
 * values through; the controller must then refuse clearly rather than act on them.
 */
export function resolveSpec(
  apiKey: ApiKey,
  now: Date,
  allowedReplicatorKeys: readonly string[] = [],
): SpecResult {
  const { spec, metadata } = apiKey;
  const problems: string[] = [];
  const environment = spec.environment ?? 'production';
  if (!ENVIRONMENTS.includes(environment)) {
    problems.push(`environment "${environment}" is not one of ${ENVIRONMENTS.join(', ')}`);
  }
  const scopes = spec.scopes ?? [];
  checkScopes(scopes, problems);
  const keyPrefix = spec.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const keyBits = spec.keyBits ?? DEFAULT_KEY_BITS;
  const keyProblem = validateKeyOptions({ prefix: keyPrefix, bits: keyBits, environment });
  if (keyProblem !== undefined) problems.push(keyProblem);
  const lifetimes = checkLifetimes(spec, problems);
  const labels = spec.secretTemplate?.labels ?? {};
  const annotations = spec.secretTemplate?.annotations ?? {};
  checkTemplate(labels, annotations, problems);
  const dataTemplates = checkDataTemplates(
    spec.secretTemplate?.data,
    { scopes, environment, name: metadata.name, namespace: metadata.namespace },
    problems,
  );
  // A replicator would copy the key where its readers, RBAC and revocation do not reach.
  problems.push(...replicatorKeys(labels, annotations, allowedReplicatorKeys));
  const schedule = checkSchedule(spec, lifetimes.expiresAfterMs, now, problems);
  const restartTargets = checkRestartTargets(spec, problems);
  const revoked = spec.revoked === true;

  if (problems.length > 0) return { ok: false, message: problems.join('; ') };
  const secretName = spec.secretName ?? metadata.name;
  return {
    ok: true,
    spec: {
      secretName,
      environment,
      scopes,
      keyPrefix,
      keyBits,
      ...lifetimes,
      labels,
      annotations,
      schedule,
      revoked,
      revocationReason: spec.revocationReason,
      restartTargets,
      dataTemplates,
    },
  };
}

/** The Secret an ApiKey writes, even when the rest of its spec is invalid. */
export function secretNameOf(apiKey: ApiKey): string {
  return apiKey.spec.secretName ?? apiKey.metadata.name;
}

/**
 * What a revocation works from when the rest of the spec is invalid: the Secret's name and nothing the
 * tenant wrote that could make the write fail (no template labels or annotations, no scopes). A
 * revocation must never wait for a spec to be mended.
 */
export function revocationSpec(apiKey: ApiKey): ResolvedSpec {
  const reason = apiKey.spec.revocationReason;
  return {
    secretName: secretNameOf(apiKey),
    environment: 'production',
    scopes: [],
    keyPrefix: DEFAULT_KEY_PREFIX,
    keyBits: DEFAULT_KEY_BITS,
    expiresAfterMs: 0,
    rotateBeforeMs: 0,
    gracePeriodMs: 0,
    labels: {},
    annotations: {},
    schedule: undefined,
    revoked: true,
    revocationReason: typeof reason === 'string' ? reason.slice(0, 256) : undefined,
    restartTargets: [],
    // Nothing is rendered from a revoked key, so a broken template cannot hold a revocation up.
    dataTemplates: [],
  };
}
