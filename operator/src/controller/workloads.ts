import type { ApiKey } from '../api/types.ts';
import { WorkloadsWriter } from '../kube/workloads-writes.ts';
import { writeAudit } from '../observability/audit.ts';
import { findCondition, setCondition } from '../reconcile/conditions.ts';
import { Reason } from '../reconcile/reasons.ts';
import {
  RESTART_TARGETS_READY,
  describeMissingTargets,
  missingTargets,
  reloadTargetsUsing,
  restartTargetsCondition,
  sameCondition,
} from '../reconcile/restart-targets.ts';
import { RESTART_KINDS, secretNameOf, type RestartKind, type RestartTarget } from '../reconcile/spec.ts';
import { concernQueue, type ConcernOptions } from './concern.ts';
import type { WorkQueue } from './queue.ts';
import { WorkloadCaches } from './workload-caches.ts';

/** What the workloads controller reads from the ApiKey controller's caches (through its recent writes). */
export interface WorkloadsApiKeyCaches {
  readonly apiKeys: () => readonly ApiKey[];
  readonly apiKeysIn: (namespace: string) => readonly ApiKey[];
  readonly apiKey: (namespace: string, name: string) => ApiKey | undefined;
}

export interface WorkloadsControllerOptions extends ConcernOptions {
  readonly caches: WorkloadsApiKeyCaches;
}

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

/** The valid targets of an ApiKey's spec (the CRD's enum allows no other kind; decide() refuses one). */
function targetsOf(apiKey: ApiKey): RestartTarget[] {
  return (apiKey.spec.rolloutRestartTargets ?? []).filter((target): target is RestartTarget =>
    (RESTART_KINDS as readonly string[]).includes(target.kind),
  );
}

/**
 * The workloads controller: watches the workloads keyrotor can restart (small views of them), keeps
 * each ApiKey's condition RestartTargetsReady (are the rolloutRestartTargets there?) under its own
 * field manager, and says which reload-annotated workloads use a key Secret that got a new key. A
 * workload's change only enqueues the ApiKeys that name it; nothing here restarts anything, so a
 * restart (itself a change of the workload) can never lead to another.
 */
export class WorkloadsController {
  readonly #options: WorkloadsControllerOptions;
  readonly #writer: WorkloadsWriter;
  readonly #caches: WorkloadCaches;
  readonly #queue: WorkQueue;
  /** Per ApiKey: the condition last written (uid and text), so a lagging cache does not repeat it. */
  readonly #written = new Map<string, string>();

  constructor(options: WorkloadsControllerOptions) {
    this.#options = options;
    this.#writer = new WorkloadsWriter(options.kc, options.clientOptions);
    this.#queue = concernQueue(options, 'apiKey', 'restart targets check failed', (key) =>
      this.#reconcile(key),
    );
    this.#caches = new WorkloadCaches({
      ...options,
      onChange: (namespace, kind, name) => {
        this.#workloadChanged(namespace, kind, name);
      },
      onAvailabilityChanged: (kind) => {
        this.#enqueue(options.caches.apiKeys().filter((apiKey) => this.#names(apiKey, kind)));
      },
    });
  }

  /** Probes which workload kinds can be listed, and waits until those that can are cached. */
  async startCaches(): Promise<void> {
    await this.#caches.start();
  }

  /** Every watched kind's cache has synced (readiness). */
  get synced(): boolean {
    return this.#caches.synced;
  }

  start(): void {
    this.#queue.start();
  }

  async shutdown(): Promise<void> {
    await this.#queue.shutdown();
    await this.#caches.stop();
  }

  async idle(): Promise<void> {
    await this.#queue.idle();
  }

  async relist(): Promise<void> {
    await this.#caches.relist();
  }

  apiKeyChanged(namespace: string, name: string): void {
    this.#queue.add(keyOf(namespace, name));
  }

  /** The periodic resync: every ApiKey's targets checked again, and every kind probed again. */
  resync(apiKeys: readonly ApiKey[]): void {
    this.#written.clear();
    this.#enqueue(apiKeys);
    void this.#caches.probe();
  }

  /**
   * The reload-annotated workloads (keyrotor.dev/reload: "true") whose pod template uses the ApiKey's
   * Secret: only of the ApiKey's own namespace, where its Secret is.
   */
  reloadTargetsFor(apiKey: ApiKey): RestartTarget[] {
    return reloadTargetsUsing(this.#caches.inNamespace(apiKey.metadata.namespace), secretNameOf(apiKey));
  }

  #enqueue(apiKeys: readonly ApiKey[]): void {
    for (const apiKey of apiKeys) this.#queue.add(keyOf(apiKey.metadata.namespace, apiKey.metadata.name));
  }

  #names(apiKey: ApiKey, kind: RestartKind, name?: string): boolean {
    return targetsOf(apiKey).some(
      (target) => target.kind === kind && (name === undefined || target.name === name),
    );
  }

  /** A workload appeared, changed or went: the ApiKeys of its namespace that name it look again. */
  #workloadChanged(namespace: string, kind: RestartKind, name: string): void {
    this.#enqueue(
      this.#options.caches.apiKeysIn(namespace).filter((apiKey) => this.#names(apiKey, kind, name)),
    );
  }

  async #reconcile(key: string): Promise<void> {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const apiKey = this.#options.caches.apiKey(namespace, key.slice(slash + 1));
    if (apiKey === undefined) {
      this.#written.delete(key);
      return;
    }
    if (apiKey.metadata.deletionTimestamp !== undefined) return;
    const existing = findCondition(apiKey.status?.conditions, RESTART_TARGETS_READY);
    const targets = targetsOf(apiKey);
    if (targets.length === 0) {
      // No targets any more: the condition goes (an apply without it under this field manager).
      if (existing !== undefined && this.#written.get(key) !== `${apiKey.metadata.uid}|none`) {
        await this.#writer.applyRestartTargetsCondition(apiKey, undefined);
        this.#written.set(key, `${apiKey.metadata.uid}|none`);
      }
      return;
    }
    // A kind not probed for yet: said nothing of rather than reported missing; the probe enqueues it.
    if (targets.some((target) => this.#caches.availability(target.kind) === undefined)) return;
    const missing = missingTargets(
      targets,
      (kind) => this.#caches.availability(kind) ?? 'available',
      (target) => this.#caches.exists(namespace, target),
    );
    const update = restartTargetsCondition(targets, missing);
    const generation = apiKey.metadata.generation;
    const text = JSON.stringify([apiKey.metadata.uid, generation, update]);
    const current = sameCondition(existing, update) && existing?.observedGeneration === generation;
    if (current || this.#written.get(key) === text) return;
    const [condition] = setCondition(existing ? [existing] : [], update, this.#options.now(), generation);
    if (condition === undefined) return;
    await this.#writer.applyRestartTargetsCondition(apiKey, condition);
    this.#written.set(key, text);
    const wasMissing = existing?.status === 'False';
    if (sameCondition(existing, update)) return;
    this.#report(apiKey, missing.length === 0 ? undefined : describeMissingTargets(missing), wasMissing);
  }

  /** A Warning event and an audit line when targets go missing; an audit line when all are back. */
  #report(apiKey: ApiKey, missing: string | undefined, wasMissing: boolean): void {
    const { logger, events } = this.#options;
    const entry = {
      namespace: apiKey.metadata.namespace,
      apiKey: apiKey.metadata.name,
      secret: secretNameOf(apiKey),
    };
    if (missing !== undefined) {
      const note = `rolloutRestartTargets names ${missing}, not found: nothing is restarted for them when the key rotates`;
      events.record(apiKey, { type: 'Warning', reason: Reason.RestartTargetMissing, action: 'Check', note });
      writeAudit(logger, {
        ...entry,
        action: 'restart-target-missing',
        reason: Reason.RestartTargetMissing,
        message: note,
      });
    } else if (wasMissing) {
      const message = 'every workload in rolloutRestartTargets exists now';
      events.record(apiKey, {
        type: 'Normal',
        reason: Reason.RestartTargetsFound,
        action: 'Check',
        note: message,
      });
      writeAudit(logger, {
        ...entry,
        action: 'restart-target-found',
        reason: Reason.RestartTargetsFound,
        message,
      });
    }
  }
}
