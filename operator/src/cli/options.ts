import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface OperatorOptions {
  readonly kubeconfig: string | undefined;
  /** Empty: every namespace. */
  readonly namespaces: readonly string[];
  readonly concurrency: number;
  readonly logLevel: LogLevel;
  readonly instance: string;
}

export const USAGE = `Usage: keyrotor [options]

Runs the keyrotor operator against the cluster of KUBECONFIG (or ~/.kube/config), or in-cluster.

Options (each also from the environment variable in brackets):
  --kubeconfig <path>     kubeconfig file [KUBECONFIG]
  --namespaces <a,b,...>  namespaces to watch; all when empty [KEYROTOR_NAMESPACES]
  --concurrency <n>       ApiKeys reconciled at once, 1 to 64; default 4 [KEYROTOR_CONCURRENCY]
  --log-level <level>     ${LOG_LEVELS.join(', ')}; default info [KEYROTOR_LOG_LEVEL]
  --instance <name>       this replica's name in Events; default the host name [POD_NAME]
  -h, --help              this text`;

export class OptionsError extends Error {
  override readonly name = 'OptionsError';
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

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
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new OptionsError(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (values.help === true) return 'help';

  const namespaces = (values.namespaces ?? env.KEYROTOR_NAMESPACES ?? '')
    .split(',')
    .map((namespace) => namespace.trim())
    .filter((namespace) => namespace !== '');
  const badNamespace = namespaces.find((namespace) => !DNS_LABEL.test(namespace));
  if (badNamespace !== undefined)
    throw new OptionsError(`--namespaces: "${badNamespace}" is not a namespace name`);

  const concurrencyText = values.concurrency ?? env.KEYROTOR_CONCURRENCY ?? '4';
  const concurrency = Number(concurrencyText);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new OptionsError(`--concurrency: "${concurrencyText}" must be a whole number from 1 to 64`);
  }

  const logLevel = values['log-level'] ?? env.KEYROTOR_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new OptionsError(`--log-level: "${logLevel}" must be one of ${LOG_LEVELS.join(', ')}`);
  }

  return {
    kubeconfig: values.kubeconfig ?? env.KUBECONFIG,
    namespaces,
    concurrency,
    logLevel: logLevel as LogLevel,
    instance: values.instance ?? env.POD_NAME ?? hostname(),
  };
}
