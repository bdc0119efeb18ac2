// The ApiKey controller: the imperative shell around decide(). Each reconcile reads the ApiKey and its
// Secret from the shared caches, asks decide() for a plan, and carries it out: an audit intent line,
// the Secret, its Events and audit lines, then the status; the verifier, the readers' guard and the
// restarts are asked for around it.
import type { Logger } from 'pino';

import type { ApiKey } from '../api/types.ts';
import { NOT_LEADER } from '../kube/client.ts';
import { KubeError, errorFields, failureSummary, isConflict, isNotFound } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Change } from '../kube/informer.ts';
import type { WorkloadRestarter } from '../kube/restarter.ts';
import type { KubeWriter } from '../kube/writes.ts';
import { writeAudit } from '../observability/audit.ts';
import type { OperatorMetrics } from '../observability/metrics.ts';
import { READY, findCondition } from '../reconcile/conditions.ts';
import { decide, recordFailure, type DecideConfig, type Plan } from '../reconcile/decide.ts';
import { readersOf } from '../reconcile/readers.ts';
import { Reason } from '../reconcile/reasons.ts';
import { secretNameOf } from '../reconcile/spec.ts';
import { lagsStatus } from '../reconcile/trust.ts';
import { objectRef, type SharedCaches } from './caches.ts';
import { MAX_REQUEUE_MS, WorkQueue } from './queue.ts';
import type { ReadersController } from './readers.ts';
import type { IssuerVerifiers } from './verifiers.ts';
import type { WorkloadsController } from './workloads.ts';

const CONFLICT_POLL_MS = 2_000;
const MAX_CONFLICT_POLL_MS = 30_000;

/** What an ApiKey says besides its status: a watch event that changes none of it changed the status only. */
const specFingerprint = (apiKey: ApiKey) =>
  JSON.stringify([
    apiKey.metadata.uid,
    apiKey.metadata.generation,
    apiKey.metadata.annotations ?? {},
    apiKey.metadata.labels ?? {},
    apiKey.metadata.deletionTimestamp !== undefined,
  ]);

export interface ApiKeyControllerOptions {
  readonly caches: SharedCaches;
  readonly writer: KubeWriter;
  readonly events: EventRecorder;
  readonly restarter: WorkloadRestarter;
  readonly verifiers: IssuerVerifiers;
  /** The other concerns, when they run: told of each ApiKey reconciled. */
  readonly readers: () => ReadersController | undefined;
  readonly workloads: () => WorkloadsController | undefined;
  readonly metrics: OperatorMetrics;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly concurrency: number;
  /** decide()'s configuration, with the seal key the manager loads when it starts. */
  readonly decideConfig: () => DecideConfig;
}

export class ApiKeyController {
  readonly #options: ApiKeyControllerOptions;
  readonly #logger: Logger;
  readonly #queue: WorkQueue;
  /** Per ApiKey in SecretConflict: how often its Secret was asked about since (#conflictPoll). */
  readonly #conflictPolls = new Map<string, number>();
  /** Per ApiKey: what its last watch event showed besides the status (specFingerprint). */
  readonly #seen = new Map<string, string>();

  constructor(options: ApiKeyControllerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    const { metrics } = options;
    this.#queue = new WorkQueue({
      concurrency: options.concurrency,
      handler: (ref) => this.#timedReconcile(ref),
      retryAfterOf: (error) => (error instanceof KubeError ? error.retryAfterMs : undefined),
      onStart: (_ref, waitedMs) => {
        metrics.queueWait.observe(waitedMs / 1000);
      },
      onFailure: (ref, error, retryInMs) => {
        metrics.queueRetries.inc();
        this.#logger.warn(
          { error: errorFields(error), apiKey: ref, retryInMs },
          'reconcile failed; will retry',
        );
      },
    });
  }

  get queueDepth(): number {
    return this.#queue.length;
  }

  /**
   * A watch event. A change of status only is keyrotor's own write (no one else may write it), and no
   * reason to look again: a reconcile that failed and recorded its failure would otherwise run again
   * at once, past its backoff (a hot loop). As controller-runtime's GenerationChangedPredicate, but
   * metadata changes (the rotate annotation, deletion) count too. Says whether it was queued.
   */
  apiKeyChanged(apiKey: ApiKey, change: Change): boolean {
    const ref = objectRef(apiKey.metadata.namespace, apiKey.metadata.name);
    const seen = specFingerprint(apiKey);
    if (change === 'delete') this.#seen.delete(ref);
    else if (change === 'update' && this.#seen.get(ref) === seen) return false;
    else this.#seen.set(ref, seen);
    this.#queue.add(ref);
    return true;
  }

  enqueue(namespace: string, name: string): void {
    this.#queue.add(objectRef(namespace, name));
  }

  start(): void {
    this.#queue.start();
  }

  idle(): Promise<void> {
    return this.#queue.idle();
  }

  shutdown(): Promise<void> {
    return this.#queue.shutdown();
  }

  async #timedReconcile(ref: string): Promise<{ requeueAfterMs?: number }> {
    const { metrics } = this.#options;
    const stopTimer = metrics.reconcileDuration.startTimer();
    try {
      const result = await this.#reconcile(ref);
      metrics.reconciles.inc({ result: 'success' });
      return result;
    } catch (error) {
      metrics.reconciles.inc({ result: 'error' });
      throw error;
    } finally {
      stopTimer();
    }
  }

  async #reconcile(ref: string): Promise<{ requeueAfterMs?: number }> {
    const { caches, writer, verifiers } = this.#options;
    const readers = this.#options.readers();
    const [namespace = '', name = ''] = ref.split('/');
    const apiKey = caches.apiKey(namespace, name);
    if (apiKey === undefined) {
      this.#queue.forget(ref);
      this.#conflictPolls.delete(ref);
      await verifiers.follow(ref, undefined);
      return {};
    }
    const secretName = secretNameOf(apiKey);
    // Secrets keyrotor does not label are not cached: ask the API server before creating one.
    const cached = caches.secret(namespace, secretName) ?? (await writer.readSecret(namespace, secretName));
    // Older than the status says: a replay, or a Secret watch that lags; only the API server can tell.
    const secret =
      cached !== undefined && lagsStatus(apiKey, cached)
        ? await writer.readSecret(namespace, secretName)
        : cached;
    const issuerRef = apiKey.spec.issuerRef;
    const namespaceLabels = caches.namespaceLabels(namespace);
    const issuer =
      issuerRef === undefined
        ? {}
        : { issuer: { issuer: caches.issuer(issuerRef.namespace, issuerRef.name), namespaceLabels } };
    const config = this.#options.decideConfig();
    const plan = decide({ apiKey, secret, now: this.#options.now(), config, namespaceLabels, ...issuer });
    // A key that must stop working leaves the verifier before its status says so.
    await verifiers.follow(ref, apiKey, { removalsOnly: true });
    // The mount guard is in place before a key of an ApiKey with readers exists in its Secret.
    const guarded = plan.secretWrite !== undefined && readersOf(apiKey).length > 0;
    if (guarded) await readers?.ensureGuard(apiKey);
    const applied = await this.#apply(apiKey, plan).catch((error: unknown) => {
      if (guarded) readers?.secretWriteFailed(apiKey);
      throw error;
    });
    // Also while deleting: what was granted goes at once, not when the garbage collector gets to it.
    readers?.apiKeyChanged(namespace, name);
    await verifiers.follow(ref, caches.apiKey(namespace, name), { statusChanged: applied.statusChanged });
    const requeueAfterMs = Math.min(
      applied.requeueAfterMs ?? MAX_REQUEUE_MS,
      MAX_REQUEUE_MS,
      this.#conflictPoll(ref, applied),
    );
    return requeueAfterMs === MAX_REQUEUE_MS && applied.requeueAfterMs === undefined
      ? {}
      : { requeueAfterMs };
  }

  /**
   * When the ApiKey's Secret is someone else's (SecretConflict), how soon to look at it again. keyrotor
   * does not watch Secrets it does not own (it would have to read every Secret), so the Secret being
   * deleted or annotated for adoption is seen by asking again: after 2 s, doubling up to 30 s.
   */
  #conflictPoll(ref: string, plan: Plan): number {
    if (findCondition(plan.status.conditions, READY)?.reason !== Reason.SecretConflict) {
      this.#conflictPolls.delete(ref);
      return MAX_REQUEUE_MS;
    }
    const polls = this.#conflictPolls.get(ref) ?? 0;
    this.#conflictPolls.set(ref, polls + 1);
    return Math.min(CONFLICT_POLL_MS * 2 ** polls, MAX_CONFLICT_POLL_MS);
  }

  async #apply(apiKey: ApiKey, plan: Plan): Promise<Plan> {
    const { caches, writer, metrics } = this.#options;
    const { namespace, name } = apiKey.metadata;
    const write = plan.secretWrite;
    if (write !== undefined) {
      const secretName = write.manifest.metadata.name;
      this.#audit(apiKey, plan, 'intent');
      try {
        if (write.kind === 'recreate') {
          await writer.deleteSecret(namespace, secretName, write.uid).catch((error: unknown) => {
            if (!isNotFound(error)) throw error;
          });
        }
        let manifest = write.manifest;
        if (write.kind === 'apply' && write.strip !== undefined && write.strip.length > 0) {
          // Fields of keyrotor's that someone else added: apply would keep them (another manager's).
          const stripped = await writer.stripSecret(
            namespace,
            secretName,
            write.strip,
            manifest.metadata.resourceVersion,
          );
          const resourceVersion = stripped.metadata?.resourceVersion;
          manifest = {
            ...manifest,
            metadata: { ...manifest.metadata, ...(resourceVersion ? { resourceVersion } : {}) },
          };
        }
        caches.wroteSecret(namespace, secretName, await writer.applySecret(manifest));
      } catch (error) {
        // A conflict means the Secret changed since the decision: decide again on fresh state.
        this.#audit(apiKey, plan, 'failed');
        if (isConflict(error)) {
          caches.wroteSecret(namespace, secretName, undefined);
          throw error;
        }
        // No longer the leader: nothing to report, the next leader decides again.
        if (error instanceof KubeError && error.reason === NOT_LEADER) throw error;
        // Anything else is reported (status, a Warning) and retried with backoff; the old key stays.
        metrics.secretWriteFailures.inc();
        await this.#record(apiKey, recordFailure(apiKey, plan, this.#options.now(), failureSummary(error)));
        throw error;
      }
      // On record as soon as the Secret holds it, whatever becomes of the status write: a status write
      // that fails (throttled, refused) must not lose the step's audit line or its Events.
      this.#audit(apiKey, plan, 'done');
      for (const event of plan.events) this.#options.events.record(apiKey, event);
      if (plan.replaced !== undefined) metrics.rotations.inc({ reason: plan.replaced });
      if (plan.replaced !== undefined) this.#requestRestarts(apiKey, plan);
    }
    await this.#record(apiKey, write === undefined ? plan : { ...plan, audit: [], events: [] });
    if (write !== undefined || plan.statusChanged) {
      this.#logger.debug(
        {
          apiKey: objectRef(namespace, name),
          keyId: plan.status.keyId,
          secretWrite: write?.kind,
          statusChanged: plan.statusChanged,
        },
        'reconciled',
      );
    }
    return plan;
  }

  /**
   * A key was replaced (rotated, revoked) in the Secret: the workloads named as targets restart, and
   * those of the namespace annotated keyrotor.dev/reload that use the Secret (one restart each).
   */
  #requestRestarts(apiKey: ApiKey, plan: Plan): void {
    const reload = this.#options.workloads()?.reloadTargetsFor(apiKey) ?? [];
    if (plan.restart.length > 0 || reload.length > 0)
      this.#options.restarter.request(apiKey, plan.restart, reload);
  }

  /** Writes the plan's status (if it changed), then its events and audit lines. */
  async #record(apiKey: ApiKey, plan: Plan): Promise<void> {
    const { namespace, name } = apiKey.metadata;
    if (plan.statusChanged)
      this.#options.caches.wroteApiKey(
        namespace,
        name,
        await this.#options.writer.applyStatus(apiKey, plan.status),
      );
    for (const event of plan.events) this.#options.events.record(apiKey, event);
    this.#audit(apiKey, plan);
  }

  #audit(apiKey: ApiKey, plan: Pick<Plan, 'audit'>, phase?: 'intent' | 'done' | 'failed'): void {
    const { namespace, name } = apiKey.metadata;
    for (const entry of plan.audit) {
      writeAudit(this.#logger, {
        ...entry,
        namespace,
        apiKey: name,
        secret: secretNameOf(apiKey),
        ...(phase === undefined ? {} : { phase }),
      });
    }
  }
}
