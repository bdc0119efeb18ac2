import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

import { load } from 'js-yaml';

import { DEFAULT_LEASE_TIMINGS, validateTimings, type LeaseTimings } from '../kube/leadership.ts';
import { parseDuration } from '../schedule/duration.ts';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface OperatorOptions {
  readonly kubeconfig: string | undefined;
  /** Empty: every namespace. */
  readonly namespaces: readonly string[];
  readonly concurrency: number;
  readonly logLevel: LogLevel;
  readonly instance: string;
  readonly qps: number;
  readonly burst: number;
  readonly rotationJitterMs: number;
  /** Automatic rotations (expiry, schedule) of one key are at least this far apart; 0 turns it off. */
  readonly minRotationIntervalMs: number;
  /** New and rotated keys reach issuers' verifier Secrets in batches this far apart. */
  readonly verifierBatchMs: number;
  /** host:port of /healthz, /readyz and /metrics; undefined when turned off. */
  readonly serve: { readonly host: string; readonly port: number } | undefined;
  /** /metrics only for bearer tokens the API server authenticates and authorizes (metrics-auth.ts). */
  readonly metricsAuth: boolean;
  /** Keep reader RBAC per ApiKey and the readers ConfigMap per namespace (spec.readers). */
  readonly manageReaders: boolean;
  /** Watch workloads: report missing rolloutRestartTargets, restart those annotated keyrotor.dev/reload. */
  readonly manageWorkloads: boolean;
  /** Keys in namespaces without the keyrotor.dev/environment label are neither issued nor rotated; absent when off. */
  readonly requireEnvironmentLabel?: boolean;
  /** Secret replicator keys a secretTemplate may set anyway (reconcile/replicators.ts). */
  readonly allowedReplicatorKeys: readonly string[];
  /** The Secret of keyrotor's seal key, in its own namespace (kube/seal-key.ts). */
  readonly sealSecret: { readonly namespace: string; readonly name: string };
  /** Leader election on a Lease; undefined when off (one replica). */
  readonly leaderElection:
    { readonly namespace: string; readonly name: string; readonly timings: LeaseTimings } | undefined;
}

export const USAGE = `Usage: keyrotor [options]

Runs the keyrotor operator against the cluster of KUBECONFIG (or ~/.kube/config), or in-cluster.

Options (each also from the environment variable in brackets):
  --kubeconfig <path>     kubeconfig file [KUBECONFIG]
  --namespaces <a,b,...>  namespaces to watch; all when empty [KEYROTOR_NAMESPACES]
  --concurrency <n>       ApiKeys reconciled at once, 1 to 64; default 4 [KEYROTOR_CONCURRENCY]
  --log-level <level>     ${LOG_LEVELS.join(', ')}; default info [KEYROTOR_LOG_LEVEL]
  --instance <name>       this replica's name in Events; default the host name [POD_NAME]
  --kube-api-qps <n>      requests per second to the API server, all clients together; default 100 [KEYROTOR_KUBE_API_QPS]
  --kube-api-burst <n>    requests allowed above that rate in a burst; default 200 [KEYROTOR_KUBE_API_BURST]
  --bind-address <a:p>    serve /healthz, /readyz and /metrics here; 0 turns it off; default 0.0.0.0:8080 [KEYROTOR_BIND_ADDRESS]
  --metrics-auth=<bool>   /metrics only for bearer tokens allowed get on nonResourceURL /metrics (TokenReview and
                          SubjectAccessReview); false serves it to anyone, for local development; default true [KEYROTOR_METRICS_AUTH]
  --no-manage-readers     do not keep RBAC and the mount guard (ApiKeyReaders) for spec.readers [KEYROTOR_MANAGE_READERS=false]
  --no-manage-workloads   do not watch workloads: no RestartTargetsReady condition, no keyrotor.dev/reload restarts
                          (rolloutRestartTargets are still restarted) [KEYROTOR_MANAGE_WORKLOADS=false]
  --allowed-replicator-keys <k,p/>
                          Secret replicator labels or annotations a secretTemplate may set anyway: keys, or
                          prefixes ending in /; default none [KEYROTOR_ALLOWED_REPLICATOR_KEYS]
  --require-environment-label
                          a namespace must be labelled keyrotor.dev/environment for its ApiKeys to get or rotate
                          keys (EnvironmentMismatch otherwise); default off [KEYROTOR_REQUIRE_ENVIRONMENT_LABEL=true]
  --rotation-jitter <d>   spread rotations due at one instant over this window, e.g. 5m; default 0s [KEYROTOR_ROTATION_JITTER]
  --min-rotation-interval <d>
                          automatic rotations (expiry, schedule) of one key are at least this far apart;
                          0s to 1h, 0s turns the limit off; default 5m [KEYROTOR_MIN_ROTATION_INTERVAL]
  --verifier-batch-interval <d>
                          new and rotated keys reach an issuer's verifier Secret in one write per
                          interval (removals are immediate); 100ms to 1m, default 1s [KEYROTOR_VERIFIER_BATCH_INTERVAL]
  --seal-secret <ns/name> the Secret of keyrotor's seal key (made if missing; back it up, losing it replaces
                          every key); default keyrotor-seal in the Pod's namespace, else keyrotor-system [KEYROTOR_SEAL_SECRET]
  --leader-elect          run as one of several replicas: only the holder of a Lease writes [KEYROTOR_LEADER_ELECT=true]
  --leader-election-namespace <ns>
                          namespace of the Lease; default the Pod's own namespace [POD_NAMESPACE]
  --leader-election-id <name>
                          name of the Lease; default keyrotor [KEYROTOR_LEADER_ELECTION_ID]
  --lease-duration <d>    how long a Lease outlives its last renewal; default 15s [KEYROTOR_LEASE_DURATION]
  --renew-deadline <d>    a leader that cannot renew for this long stops writing and exits; default 10s [KEYROTOR_RENEW_DEADLINE]
  --retry-period <d>      time between attempts to acquire or renew the Lease; default 2s [KEYROTOR_RETRY_PERIOD]
                          (the three Lease timings also take milliseconds, e.g. 500ms)
  --config <path>         a YAML file of these options by their flag names (e.g. kube-api-qps: 50); flags
                          and environment variables win over it [KEYROTOR_CONFIG]
  -h, --help              this text`;

export class OptionsError extends Error {
  override readonly name = 'OptionsError';
}

/**
 * The shortest lifetime an ApiKey may have (the CRD's expiresAfter >= 1h): a longer minimum interval
 * would hold a rotation past its key's expiry.
 */
const MAX_MIN_ROTATION_INTERVAL_MS = 3_600_000;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function bindAddress(text: string): OperatorOptions['serve'] {
  if (text === '0') return undefined;
  const match = /^(.*):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535) {
    throw new OptionsError(
      `--bind-address: "${text}" must be host:port (e.g. 0.0.0.0:8080), or 0 to turn it off`,
    );
  }
  return { host: match[1] ?? '0.0.0.0', port };
}

function numberIn(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new OptionsError(`--${flag}: "${text}" must be a number from ${min} to ${max}`);
  }
  return value;
}

const FLAGS = {
  kubeconfig: { type: 'string' },
  namespaces: { type: 'string' },
  concurrency: { type: 'string' },
  'log-level': { type: 'string' },
  instance: { type: 'string' },
  'kube-api-qps': { type: 'string' },
  'kube-api-burst': { type: 'string' },
  'rotation-jitter': { type: 'string' },
  'min-rotation-interval': { type: 'string' },
  'verifier-batch-interval': { type: 'string' },
  'bind-address': { type: 'string' },
  'metrics-auth': { type: 'string' },
  'manage-readers': { type: 'boolean' },
  'manage-workloads': { type: 'boolean' },
  'require-environment-label': { type: 'boolean' },
  'allowed-replicator-keys': { type: 'string' },
  'seal-secret': { type: 'string' },
  'leader-elect': { type: 'boolean' },
  'leader-election-namespace': { type: 'string' },
  'leader-election-id': { type: 'string' },
  'lease-duration': { type: 'string' },
  'renew-deadline': { type: 'string' },
  'retry-period': { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
type Flag = Exclude<keyof typeof FLAGS, 'config' | 'help'>;

/** The options of a --config file: a YAML mapping of flag names to values (lists for namespaces). */
function readConfigFile(path: string, readFile: (path: string) => string): Partial<Record<Flag, string>> {
  let document: unknown;
  try {
    document = load(readFile(path));
  } catch (error) {
    throw new OptionsError(`--config ${path}: ${(error as Error).message.split('\n')[0] ?? 'unreadable'}`);
  }
  if (document === undefined || document === null) return {};
  if (typeof document !== 'object' || Array.isArray(document))
    throw new OptionsError(`--config ${path}: must be a mapping of option names to values`);
  const known = Object.keys(FLAGS).filter((flag) => flag !== 'config' && flag !== 'help');
  const options: Partial<Record<Flag, string>> = {};
  for (const [name, value] of Object.entries(document)) {
    if (!known.includes(name))
      throw new OptionsError(`--config ${path}: unknown option "${name}"; known: ${known.join(', ')}`);
    const text = Array.isArray(value)
      ? value.map(String).join(',')
      : typeof value === 'object' && value !== null
        ? undefined
        : String(value);
    if (text === undefined) throw new OptionsError(`--config ${path}: "${name}" must be a value or a list`);
    options[name as Flag] = text;
  }
  return options;
}

function durationOf(flag: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new OptionsError(`--${flag}: "${text}" is not a duration such as 30s, 5m or 1h`);
  return ms;
}

/** --min-rotation-interval: 0s (no limit) to 1h. */
function minRotationIntervalOf(text: string): number {
  const ms = text === '0' ? 0 : durationOf('min-rotation-interval', text);
  if (ms > MAX_MIN_ROTATION_INTERVAL_MS)
    throw new OptionsError(`--min-rotation-interval: "${text}" must be from 0s to 1h`);
  return ms;
}

/** Lease timings and the verifier batch interval also take milliseconds (500ms). */
function leaseTimingOf(flag: string, text: string): number {
  const ms = /^(\d{1,6})ms$/.exec(text);
  return ms ? Number(ms[1]) : durationOf(flag, text);
}

/** The Pod's namespace when running in a cluster (the ServiceAccount mount), else undefined. */
function podNamespace(readFile: (path: string) => string): string | undefined {
  try {
    return readFile('/var/run/secrets/kubernetes.io/serviceaccount/namespace').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses flags, environment variables and the --config file, in that order of precedence; throws
 * OptionsError with a clear message naming the option.
 */
export function parseOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): OperatorOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: FLAGS,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    }));
  } catch (error) {
    throw new OptionsError(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (values.help === true) return 'help';
  const configPath = values.config ?? env.KEYROTOR_CONFIG;
  const file = configPath === undefined ? {} : readConfigFile(configPath, readFile);
  const pick = (flag: Flag, variable: string, fallback: string): string => {
    const value = values[flag];
    if (typeof value === 'boolean') return String(value);
    return value ?? env[variable] ?? file[flag] ?? fallback;
  };
  const bool = (flag: Flag, variable: string, fallback: boolean): boolean => {
    const text = pick(flag, variable, String(fallback));
    if (text !== 'true' && text !== 'false')
      throw new OptionsError(`--${flag}: "${text}" must be true or false`);
    return text === 'true';
  };

  const namespaces = pick('namespaces', 'KEYROTOR_NAMESPACES', '')
    .split(',')
    .map((namespace) => namespace.trim())
    .filter((namespace) => namespace !== '');
  const badNamespace = namespaces.find((namespace) => !DNS_LABEL.test(namespace));
  if (badNamespace !== undefined)
    throw new OptionsError(`--namespaces: "${badNamespace}" is not a namespace name`);

  const concurrencyText = pick('concurrency', 'KEYROTOR_CONCURRENCY', '4');
  const concurrency = Number(concurrencyText);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new OptionsError(`--concurrency: "${concurrencyText}" must be a whole number from 1 to 64`);
  }
  const logLevel = pick('log-level', 'KEYROTOR_LOG_LEVEL', 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new OptionsError(`--log-level: "${logLevel}" must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const jitterText = pick('rotation-jitter', 'KEYROTOR_ROTATION_JITTER', '0s');
  const rotationJitterMs = jitterText === '0' ? 0 : durationOf('rotation-jitter', jitterText);
  const minRotationIntervalMs = minRotationIntervalOf(
    pick('min-rotation-interval', 'KEYROTOR_MIN_ROTATION_INTERVAL', '5m'),
  );
  const batchText = pick('verifier-batch-interval', 'KEYROTOR_VERIFIER_BATCH_INTERVAL', '1s');
  const verifierBatchMs = leaseTimingOf('verifier-batch-interval', batchText);
  if (verifierBatchMs < 100 || verifierBatchMs > 60_000)
    throw new OptionsError(`--verifier-batch-interval: "${batchText}" must be from 100ms to 1m`);

  return {
    kubeconfig: values.kubeconfig ?? env.KUBECONFIG ?? file.kubeconfig,
    namespaces,
    concurrency,
    logLevel: logLevel as LogLevel,
    instance: pick('instance', 'POD_NAME', hostname()),
    qps: numberIn('kube-api-qps', pick('kube-api-qps', 'KEYROTOR_KUBE_API_QPS', '100'), 1, 10_000),
    burst: numberIn('kube-api-burst', pick('kube-api-burst', 'KEYROTOR_KUBE_API_BURST', '200'), 1, 100_000),
    rotationJitterMs,
    minRotationIntervalMs,
    verifierBatchMs,
    serve: bindAddress(pick('bind-address', 'KEYROTOR_BIND_ADDRESS', '0.0.0.0:8080')),
    metricsAuth: bool('metrics-auth', 'KEYROTOR_METRICS_AUTH', true),
    manageReaders: bool('manage-readers', 'KEYROTOR_MANAGE_READERS', true),
    manageWorkloads: bool('manage-workloads', 'KEYROTOR_MANAGE_WORKLOADS', true),
    ...(bool('require-environment-label', 'KEYROTOR_REQUIRE_ENVIRONMENT_LABEL', false)
      ? { requireEnvironmentLabel: true }
      : {}),
    allowedReplicatorKeys: pick('allowed-replicator-keys', 'KEYROTOR_ALLOWED_REPLICATOR_KEYS', '')
      .split(',')
      .map((key) => key.trim())
      .filter((key) => key !== ''),
    sealSecret: sealSecret(
      pick(
        'seal-secret',
        'KEYROTOR_SEAL_SECRET',
        `${env.POD_NAMESPACE ?? podNamespace(readFile) ?? 'keyrotor-system'}/keyrotor-seal`,
      ),
    ),
    leaderElection: bool('leader-elect', 'KEYROTOR_LEADER_ELECT', false)
      ? leaderElection(pick, readFile)
      : undefined,
  };
}

function sealSecret(text: string): OperatorOptions['sealSecret'] {
  const [namespace = '', name = '', extra] = text.split('/');
  if (extra !== undefined || !DNS_LABEL.test(namespace) || !DNS_LABEL.test(name))
    throw new OptionsError(`--seal-secret: "${text}" must be namespace/name`);
  return { namespace, name };
}

function leaderElection(
  pick: (flag: Flag, variable: string, fallback: string) => string,
  readFile: (path: string) => string,
): OperatorOptions['leaderElection'] {
  const namespace = pick('leader-election-namespace', 'POD_NAMESPACE', podNamespace(readFile) ?? '');
  if (!DNS_LABEL.test(namespace)) {
    throw new OptionsError(
      namespace === ''
        ? "--leader-election-namespace: needed outside a cluster (in a Pod it defaults to the Pod's namespace)"
        : `--leader-election-namespace: "${namespace}" is not a namespace name`,
    );
  }
  const name = pick('leader-election-id', 'KEYROTOR_LEADER_ELECTION_ID', 'keyrotor');
  if (!DNS_LABEL.test(name))
    throw new OptionsError(`--leader-election-id: "${name}" is not a valid Lease name`);
  const seconds = (ms: number) => `${ms / 1000}s`;
  const timings: LeaseTimings = {
    leaseDurationMs: leaseTimingOf(
      'lease-duration',
      pick('lease-duration', 'KEYROTOR_LEASE_DURATION', seconds(DEFAULT_LEASE_TIMINGS.leaseDurationMs)),
    ),
    renewDeadlineMs: leaseTimingOf(
      'renew-deadline',
      pick('renew-deadline', 'KEYROTOR_RENEW_DEADLINE', seconds(DEFAULT_LEASE_TIMINGS.renewDeadlineMs)),
    ),
    retryPeriodMs: leaseTimingOf(
      'retry-period',
      pick('retry-period', 'KEYROTOR_RETRY_PERIOD', seconds(DEFAULT_LEASE_TIMINGS.retryPeriodMs)),
    ),
  };
  const problem = validateTimings(timings);
  if (problem !== undefined) throw new OptionsError(`leader election: ${problem}`);
  return { namespace, name, timings };
}
