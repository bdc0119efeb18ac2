import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

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
  /** host:port of /healthz, /readyz and /metrics; undefined when turned off. */
  readonly serve: { readonly host: string; readonly port: number } | undefined;
  /** Keep reader RBAC per ApiKey and the readers ConfigMap per namespace (spec.readers). */
  readonly manageReaders: boolean;
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
  --no-manage-readers     do not keep RBAC and the mount policy's ConfigMap for spec.readers [KEYROTOR_MANAGE_READERS=false]
  --rotation-jitter <d>   spread rotations due at one instant over this window, e.g. 5m; default 0s [KEYROTOR_ROTATION_JITTER]
  -h, --help              this text`;

export class OptionsError extends Error {
  override readonly name = 'OptionsError';
}

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

/** Parses flags (which win) and environment variables; throws OptionsError with a clear message. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): OperatorOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        kubeconfig: { type: 'string' },
        namespaces: { type: 'string' },
        concurrency: { type: 'string' },
        'log-level': { type: 'string' },
        instance: { type: 'string' },
        'kube-api-qps': { type: 'string' },
        'kube-api-burst': { type: 'string' },
        'rotation-jitter': { type: 'string' },
        'bind-address': { type: 'string' },
        'manage-readers': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    }));
  } catch (error) {
    throw new OptionsError(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (values.help === true) return 'help';
  const pick = (flag: keyof typeof values, variable: string, fallback: string): string => {
    const value = values[flag];
    return typeof value === 'string' ? value : (env[variable] ?? fallback);
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
  const rotationJitterMs = jitterText === '0' ? 0 : parseDuration(jitterText);
  if (rotationJitterMs === undefined) {
    throw new OptionsError(`--rotation-jitter: "${jitterText}" is not a duration such as 30s, 5m or 1h`);
  }

  return {
    kubeconfig: values.kubeconfig ?? env.KUBECONFIG,
    namespaces,
    concurrency,
    logLevel: logLevel as LogLevel,
    instance: pick('instance', 'POD_NAME', hostname()),
    qps: numberIn('kube-api-qps', pick('kube-api-qps', 'KEYROTOR_KUBE_API_QPS', '100'), 1, 10_000),
    burst: numberIn('kube-api-burst', pick('kube-api-burst', 'KEYROTOR_KUBE_API_BURST', '200'), 1, 100_000),
    rotationJitterMs,
    serve: bindAddress(pick('bind-address', 'KEYROTOR_BIND_ADDRESS', '0.0.0.0:8080')),
    manageReaders: values['manage-readers'] ?? env.KEYROTOR_MANAGE_READERS !== 'false',
  };
}
