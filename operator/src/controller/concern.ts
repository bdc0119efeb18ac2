import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import type { ClientOptions } from '../kube/client.ts';
import { KubeError, errorFields } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { ResilientInformer } from '../kube/informer.ts';
import { WorkQueue } from './queue.ts';

/**
 * What every controller beside the ApiKey controller (one per concern: readers, workloads) is given
 * by it: the cluster, where to watch, how to watch, and the shared event recorder and clock.
 */
export interface ConcernOptions {
  readonly kc: KubeConfig;
  readonly logger: Logger;
  /** Namespaces to watch; all when empty. */
  readonly namespaces: readonly string[];
  readonly clientOptions: ClientOptions;
  readonly watchOptions: Pick<
    ConstructorParameters<typeof ResilientInformer>[0],
    'onTransition' | 'staleAfterMs'
  >;
  readonly events: EventRecorder;
  readonly now: () => Date;
  readonly concurrency?: number;
}

/**
 * A concern's own queue: `reconcile` per key, a failure logged (as status, reason and a scrubbed
 * message) and retried with backoff, a 429's Retry-After honoured. `what` names the key in the log
 * line ("readers", "apiKey"), `failed` says what failed.
 */
export function concernQueue(
  options: Pick<ConcernOptions, 'logger' | 'concurrency'>,
  what: string,
  failed: string,
  reconcile: (key: string) => Promise<void>,
): WorkQueue {
  return new WorkQueue({
    concurrency: options.concurrency ?? 2,
    handler: async (key) => {
      await reconcile(key);
      return {};
    },
    retryAfterOf: (error) => (error instanceof KubeError ? error.retryAfterMs : undefined),
    onFailure: (key, error, retryInMs) => {
      options.logger.warn({ error: errorFields(error), [what]: key, retryInMs }, `${failed}; will retry`);
    },
  });
}
