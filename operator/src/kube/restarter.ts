import { AppsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { ANNOTATION_RESTARTED_AT } from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import { writeAudit } from '../observability/audit.ts';
import { Reason } from '../reconcile/reasons.ts';
import type { RestartTarget } from '../reconcile/spec.ts';
import { makeClient, type ClientOptions } from './client.ts';
import { call, errorFields, failureSummary, isNotFound } from './errors.ts';
import type { EventRecorder } from './events.ts';

interface Pending {
  readonly namespace: string;
  readonly target: RestartTarget;
  readonly apiKeys: Map<string, ApiKey>;
  readonly timer: NodeJS.Timeout;
}

/**
 * Restarts the workloads that read keys from environment variables after a rotation, the way
 * `kubectl rollout restart` does (a pod-template annotation with the time). Requests for the same
 * workload within the debounce window become one restart, so keys rotating together restart it once.
 * A missing workload is a Warning on the ApiKey, never a failed reconcile.
 */
export class WorkloadRestarter {
  readonly #apps: AppsV1Api;
  readonly #events: EventRecorder;
  readonly #logger: Logger;
  readonly #debounceMs: number;
  readonly #now: () => Date;
  readonly #pending = new Map<string, Pending>();
  readonly #inFlight = new Set<Promise<void>>();

  constructor(
    kc: KubeConfig,
    events: EventRecorder,
    logger: Logger,
    options: ClientOptions & { debounceMs: number; now: () => Date },
  ) {
    this.#apps = makeClient(kc, AppsV1Api, options);
    this.#events = events;
    this.#logger = logger;
    this.#debounceMs = options.debounceMs;
    this.#now = options.now;
  }

  request(apiKey: ApiKey, targets: readonly RestartTarget[]): void {
    const { namespace } = apiKey.metadata;
    for (const target of targets) {
      const id = `${namespace}/${target.kind}/${target.name}`;
      const pending = this.#pending.get(id);
      if (pending !== undefined) {
        pending.apiKeys.set(apiKey.metadata.uid, apiKey);
        continue;
      }
      const timer = setTimeout(() => {
        this.#fire(id);
      }, this.#debounceMs);
      this.#pending.set(id, { namespace, target, apiKeys: new Map([[apiKey.metadata.uid, apiKey]]), timer });
    }
  }

  /** Restarts what is pending now and waits for every restart in flight (shutdown). */
  async flush(): Promise<void> {
    for (const id of [...this.#pending.keys()]) this.#fire(id);
    await Promise.all(this.#inFlight);
  }

  #fire(id: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.#pending.delete(id);
    const work = this.#restart(pending).finally(() => this.#inFlight.delete(work));
    this.#inFlight.add(work);
  }

  async #restart({ namespace, target, apiKeys }: Pending): Promise<void> {
    const { kind, name } = target;
    const body = {
      spec: {
        template: { metadata: { annotations: { [ANNOTATION_RESTARTED_AT]: this.#now().toISOString() } } },
      },
    };
    const options = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const description = `restart ${kind} ${namespace}/${name}`;
    try {
      await call(description, () => {
        if (kind === 'Deployment')
          return this.#apps.patchNamespacedDeployment({ namespace, name, body }, options);
        if (kind === 'StatefulSet')
          return this.#apps.patchNamespacedStatefulSet({ namespace, name, body }, options);
        return this.#apps.patchNamespacedDaemonSet({ namespace, name, body }, options);
      });
    } catch (error) {
      const missing = isNotFound(error);
      for (const apiKey of apiKeys.values()) {
        const note = missing
          ? `${kind} ${name} named in rolloutRestartTargets does not exist; nothing was restarted`
          : `could not restart ${kind} ${name}: ${failureSummary(error)}`;
        this.#events.record(apiKey, {
          type: 'Warning',
          reason: Reason.WorkloadNotFound,
          action: 'Restart',
          note,
        });
      }
      if (!missing) this.#logger.warn({ error: errorFields(error) }, 'workload restart failed');
      return;
    }
    const keys = [...apiKeys.values()].map((apiKey) => apiKey.metadata.name);
    for (const apiKey of apiKeys.values()) {
      const note = `restarted ${kind} ${name} so it reads the new key (rotated: ${keys.join(', ')})`;
      this.#events.record(apiKey, {
        type: 'Normal',
        reason: Reason.WorkloadRestarted,
        action: 'Restart',
        note,
      });
      writeAudit(this.#logger, {
        action: 'restarted',
        namespace,
        apiKey: apiKey.metadata.name,
        secret: apiKey.spec.secretName ?? apiKey.metadata.name,
        reason: Reason.WorkloadRestarted,
        message: note,
      });
    }
  }
}
