import {
  AppsV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { ANNOTATION_RESTARTED_AT, ROLLOUT_GROUP, ROLLOUT_PLURAL, ROLLOUT_VERSION } from '../api/names.ts';
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
  /** Asked for by the workload's keyrotor.dev/reload annotation only, not by rolloutRestartTargets. */
  reloadOnly: boolean;
  readonly timer: NodeJS.Timeout;
}

/** RFC 3339 to the second, as Argo Rollouts' own `kubectl argo rollouts restart` writes spec.restartAt. */
const toSeconds = (time: Date) => time.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Restarts the workloads that read keys from environment variables after a rotation, the way
 * `kubectl rollout restart` does (a pod-template annotation with the time; spec.restartAt on an Argo
 * Rollout). Requests for the same workload within the debounce window become one restart, so keys
 * rotating together restart it once. A missing workload is a Warning on the ApiKey, never a failed
 * reconcile. Every restart is in the requesting ApiKey's own namespace: there is no other to name.
 */
export class WorkloadRestarter {
  readonly #apps: AppsV1Api;
  readonly #custom: CustomObjectsApi;
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
    this.#custom = makeClient(kc, CustomObjectsApi, options);
    this.#events = events;
    this.#logger = logger;
    this.#debounceMs = options.debounceMs;
    this.#now = options.now;
  }

  /** `reload`: the workloads that asked for it by annotation (not named in rolloutRestartTargets). */
  request(apiKey: ApiKey, targets: readonly RestartTarget[], reload: readonly RestartTarget[] = []): void {
    const { namespace } = apiKey.metadata;
    const named = new Set(targets.map((target) => `${target.kind}/${target.name}`));
    for (const target of [...targets, ...reload]) {
      const reloadOnly = !named.has(`${target.kind}/${target.name}`);
      const id = `${namespace}/${target.kind}/${target.name}`;
      const pending = this.#pending.get(id);
      if (pending !== undefined) {
        pending.apiKeys.set(apiKey.metadata.uid, apiKey);
        pending.reloadOnly &&= reloadOnly;
        continue;
      }
      const timer = setTimeout(() => {
        this.#fire(id);
      }, this.#debounceMs);
      const apiKeys = new Map([[apiKey.metadata.uid, apiKey]]);
      this.#pending.set(id, { namespace, target, apiKeys, reloadOnly, timer });
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

  async #restart({ namespace, target, apiKeys, reloadOnly }: Pending): Promise<void> {
    const { kind, name } = target;
    const now = this.#now();
    const body = {
      spec: {
        template: { metadata: { annotations: { [ANNOTATION_RESTARTED_AT]: now.toISOString() } } },
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
        if (kind === 'DaemonSet')
          return this.#apps.patchNamespacedDaemonSet({ namespace, name, body }, options);
        // Argo Rollouts restarts every Pod older than spec.restartAt (its pod template stays as it is).
        return this.#custom.patchNamespacedCustomObject(
          {
            group: ROLLOUT_GROUP,
            version: ROLLOUT_VERSION,
            namespace,
            plural: ROLLOUT_PLURAL,
            name,
            body: { spec: { restartAt: toSeconds(now) } },
          },
          options,
        );
      });
    } catch (error) {
      const missing = isNotFound(error);
      const where = reloadOnly ? 'annotated keyrotor.dev/reload' : 'named in rolloutRestartTargets';
      for (const apiKey of apiKeys.values()) {
        const note = missing
          ? `${kind} ${name} ${where} does not exist${kind === 'Rollout' ? ' (or the Argo Rollouts CRD is not installed)' : ''}; nothing was restarted`
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
