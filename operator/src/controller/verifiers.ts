import type { Logger } from 'pino';

import { ISSUER_KIND } from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer, ApiKeyIssuerStatus } from '../api/types.ts';
import {
  entriesFor,
  listedByConsumer,
  planVerifier,
  readVerifierDocument,
  referencesIssuer,
  verifierSecretNameOf,
  verifierWriteFailed,
} from '../issuer/verifier-plan.ts';
import { NOT_LEADER } from '../kube/client.ts';
import { KubeError, errorFields, failureSummary, isConflict } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { KubeWriter } from '../kube/writes.ts';
import { writeVerifierAudit } from '../observability/audit.ts';
import type { OperatorMetrics } from '../observability/metrics.ts';
import type { PlannedEvent } from '../reconcile/planned.ts';
import type { SecretLike } from '../reconcile/secret.ts';
import { secretNameOf } from '../reconcile/spec.ts';
import { stableJson } from '../reconcile/stable-json.ts';
import type { VerifierEntry } from '../verify/document.ts';
import { MAX_REQUEUE_MS, WorkQueue, type HandlerResult } from './queue.ts';

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

/** The controller's caches as the verifiers see them: the freshest known objects, and what was written. */
export interface VerifierCaches {
  /** Every cached ApiKey. */
  apiKeys(): readonly ApiKey[];
  apiKey(namespace: string, name: string): ApiKey | undefined;
  issuer(namespace: string, name: string): ApiKeyIssuer | undefined;
  secret(namespace: string, name: string): SecretLike | undefined;
  namespaceLabels(namespace: string): Readonly<Record<string, string>>;
  /** The key keyrotor seals key Secrets with: only sealed entries reach a verifier. */
  sealKey(): Uint8Array;
  wroteSecret(namespace: string, name: string, written: SecretLike | undefined): void;
  wroteIssuer(namespace: string, name: string, written: ApiKeyIssuer): void;
}

export interface VerifiersOptions {
  readonly caches: VerifierCaches;
  readonly writer: KubeWriter;
  readonly events: EventRecorder;
  readonly metrics: OperatorMetrics;
  readonly logger: Logger;
  readonly now: () => Date;
  /** New and rotated keys reach a verifier in one write per this interval. */
  readonly batchMs: number;
  /** The largest verifier document written, in bytes (default MAX_VERIFIER_BYTES). */
  readonly maxBytes?: number;
}

/** An issuer's verifier document as last seen, by consumer: so an ApiKey's reconcile can tell what it lists. */
interface ListedKeys {
  readonly resourceVersion: string | undefined;
  readonly byConsumer: ReadonlyMap<string, readonly VerifierEntry[]>;
}

/**
 * The ApiKeyIssuers' verifier Secrets: the shell around planVerifier(). Verifiers have their own work
 * queue: one write serves every key of an issuer, so it must not wait behind thousands of ApiKeys in a
 * rotation storm (the storm benchmark saw a minute's wait when it shared theirs). Keys that must stop
 * working leave a verifier within the ApiKey's reconcile (follow()); new and rotated keys are batched.
 */
export class IssuerVerifiers {
  readonly #options: VerifiersOptions;
  readonly #caches: VerifierCaches;
  readonly #queue: WorkQueue;
  /** The issuer each ApiKey referenced when last reconciled: to update its verifier once it no longer does. */
  readonly #issuerOf = new Map<string, string>();
  /** One verifier reconcile per issuer at a time, whether from the queue or from an ApiKey's reconcile. */
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #listed = new Map<string, ListedKeys>();
  /** The spec generation of each issuer last acted on. */
  readonly #generations = new Map<string, number | undefined>();

  constructor(options: VerifiersOptions) {
    this.#options = options;
    this.#caches = options.caches;
    this.#queue = new WorkQueue({
      concurrency: 1,
      handler: (issuerKey) => this.#sync(issuerKey),
      retryAfterOf: (error) => (error instanceof KubeError ? error.retryAfterMs : undefined),
      onFailure: (issuerKey, error, retryInMs) => {
        options.metrics.queueRetries.inc();
        options.logger.warn(
          { error: errorFields(error), issuer: issuerKey, retryInMs },
          'verifier reconcile failed; will retry',
        );
      },
    });
  }

  start(): void {
    this.#queue.start();
  }

  async shutdown(): Promise<void> {
    await this.#queue.shutdown();
  }

  async idle(): Promise<void> {
    await this.#queue.idle();
  }

  /** Every issuer is looked at again (resync, start of leadership). */
  resync(issuers: Iterable<ApiKeyIssuer>): void {
    for (const issuer of issuers) this.#queue.add(keyOf(issuer.metadata.namespace, issuer.metadata.name));
  }

  /**
   * An issuer changed (`cached` is what the cache holds now; undefined once deleted). True when its
   * spec changed or it was deleted, so every key that references it must be looked at again; its own
   * status writes come back as changes too, and acting on them would undo the batching.
   */
  issuerChanged(issuer: ApiKeyIssuer, cached: ApiKeyIssuer | undefined): boolean {
    const key = keyOf(issuer.metadata.namespace, issuer.metadata.name);
    if (cached !== undefined && this.#generations.get(key) === cached.metadata.generation) return false;
    if (cached === undefined) this.#generations.delete(key);
    else this.#generations.set(key, cached.metadata.generation);
    this.#queue.add(key);
    return true;
  }

  /** A verifier Secret changed: repaired if someone else changed it, batched like new keys. */
  verifierSecretChanged(namespace: string, issuerName: string): void {
    this.#queue.addAfter(keyOf(namespace, issuerName), this.#options.batchMs);
  }

  /**
   * Brings the verifier of the ApiKey's issuer (and of the one it left, if it changed issuerRef; or was
   * deleted: `apiKey` undefined) in line with its key. A key that must stop working (revoked, deleted,
   * refused, moved) leaves the verifier now; with `removalsOnly` nothing else is done (the reconcile
   * calls this before writing, so the verifier drops a key before its status says so). Otherwise new and
   * rotated keys, and a changed status (a key newly refused or permitted: the issuer's counts), are
   * batched.
   */
  async follow(
    key: string,
    apiKey: ApiKey | undefined,
    { removalsOnly = false, statusChanged = false } = {},
  ): Promise<void> {
    const ref = apiKey?.spec.issuerRef;
    const issuerKey = ref === undefined ? undefined : keyOf(ref.namespace, ref.name);
    const before = this.#issuerBefore(key, apiKey);
    if (issuerKey === undefined) this.#issuerOf.delete(key);
    else this.#issuerOf.set(key, issuerKey);
    if (before !== undefined && before !== issuerKey) await this.#removeNow(before);
    if (apiKey === undefined || ref === undefined || issuerKey === undefined) return;
    const issuer = this.#caches.issuer(ref.namespace, ref.name);
    if (issuer === undefined) return;
    const { namespace } = apiKey.metadata;
    const listed = this.#listedKeys(issuer).get(key) ?? [];
    const wanted = entriesFor(
      { apiKey, secret: this.#caches.secret(namespace, secretNameOf(apiKey)) },
      issuer,
      this.#caches.namespaceLabels(namespace),
      listed,
      this.#options.now(),
      this.#caches.sealKey(),
    );
    if (wanted.standing !== 'permitted' && listed.length > 0) {
      await this.#removeNow(issuerKey);
    } else if (!removalsOnly) {
      const sorted = [...wanted.entries].sort((a, b) => a.keyId.localeCompare(b.keyId));
      if (statusChanged || stableJson(sorted) !== stableJson(listed)) {
        this.#queue.addAfter(issuerKey, this.#options.batchMs);
      }
    }
  }

  /**
   * Writes the issuer's verifier now, to drop a key. A failure does not fail the ApiKey's reconcile:
   * revoking a key in its Secret must not wait for its issuer's verifier, which its own queue retries
   * (with backoff) and its status reports (VerifierWriteFailed).
   */
  async #removeNow(issuerKey: string): Promise<void> {
    try {
      await this.#sync(issuerKey);
    } catch (error) {
      this.#options.logger.warn(
        { error: errorFields(error), issuer: issuerKey },
        'could not drop a key from a verifier at once; retrying',
      );
      this.#queue.add(issuerKey);
    }
  }

  /**
   * The issuer the ApiKey referenced when last reconciled; for an ApiKey deleted before this process
   * reconciled it, one whose verifier, as last parsed, lists it.
   */
  #issuerBefore(key: string, apiKey: ApiKey | undefined): string | undefined {
    const known = this.#issuerOf.get(key);
    if (known !== undefined || apiKey !== undefined) return known;
    for (const [issuerKey, listed] of this.#listed) if (listed.byConsumer.has(key)) return issuerKey;
    return undefined;
  }

  /** What the issuer's verifier Secret lists, by consumer ApiKey; parsed once per Secret version. */
  #listedKeys(issuer: ApiKeyIssuer): ReadonlyMap<string, readonly VerifierEntry[]> {
    const { namespace, name } = issuer.metadata;
    const secret = this.#caches.secret(namespace, verifierSecretNameOf(issuer));
    const resourceVersion = secret?.metadata?.resourceVersion;
    const known = this.#listed.get(keyOf(namespace, name));
    if (known !== undefined && known.resourceVersion === resourceVersion) return known.byConsumer;
    const byConsumer = listedByConsumer(readVerifierDocument(secret));
    this.#listed.set(keyOf(namespace, name), { resourceVersion, byConsumer });
    return byConsumer;
  }

  /** Reconciles the issuer's verifier after any reconcile of it in progress (the queue does not see these calls). */
  async #sync(issuerKey: string): Promise<HandlerResult> {
    const previous = this.#locks.get(issuerKey) ?? Promise.resolve();
    const work = () => this.#reconcile(issuerKey);
    const run = previous.then(work, work);
    const settled = run.catch(() => undefined);
    this.#locks.set(issuerKey, settled);
    void settled.then(() => {
      if (this.#locks.get(issuerKey) === settled) this.#locks.delete(issuerKey);
    });
    return run;
  }

  /** The issuer's verifier Secret and status, from every ApiKey that references it. */
  async #reconcile(issuerKey: string): Promise<HandlerResult> {
    const { writer, now } = this.#options;
    const [namespace = '', name = ''] = issuerKey.split('/');
    const issuer = this.#caches.issuer(namespace, name);
    // Deleted: the garbage collector removes its verifier Secret with it.
    if (issuer === undefined) {
      this.#listed.delete(issuerKey);
      return {};
    }
    const secretName = verifierSecretNameOf(issuer);
    // A Secret of that name that keyrotor did not label is not cached: ask before writing over it.
    const verifierSecret =
      this.#caches.secret(namespace, secretName) ?? (await writer.readSecret(namespace, secretName));
    const consumers = this.#caches
      .apiKeys()
      .filter((apiKey) => referencesIssuer(apiKey, issuer))
      .map((cached) => {
        const apiKey = this.#caches.apiKey(cached.metadata.namespace, cached.metadata.name) ?? cached;
        return { apiKey, secret: this.#caches.secret(apiKey.metadata.namespace, secretNameOf(apiKey)) };
      });
    const plan = planVerifier({
      issuer,
      consumers,
      namespaceLabels: (consumerNamespace) => this.#caches.namespaceLabels(consumerNamespace),
      verifierSecret,
      now: now(),
      ...(this.#options.maxBytes === undefined ? {} : { maxBytes: this.#options.maxBytes }),
      sealKey: this.#caches.sealKey(),
    });
    if (plan.write !== undefined) {
      try {
        this.#caches.wroteSecret(namespace, secretName, await writer.applySecret(plan.write));
        this.#options.metrics.verifierWrites.inc();
      } catch (error) {
        if (isConflict(error)) {
          this.#caches.wroteSecret(namespace, secretName, undefined);
          throw error;
        }
        if (error instanceof KubeError && error.reason === NOT_LEADER) throw error;
        const failed = verifierWriteFailed(issuer, now(), failureSummary(error));
        await this.#record(issuer, failed.status, true, failed.events);
        throw error;
      }
      if (plan.change !== undefined) {
        writeVerifierAudit(this.#options.logger, {
          namespace,
          issuer: name,
          secret: secretName,
          ...plan.change,
        });
      }
    }
    await this.#record(issuer, plan.status, plan.statusChanged, plan.events);
    return plan.requeueAfterMs === undefined
      ? {}
      : { requeueAfterMs: Math.min(plan.requeueAfterMs, MAX_REQUEUE_MS) };
  }

  async #record(
    issuer: ApiKeyIssuer,
    status: ApiKeyIssuerStatus,
    changed: boolean,
    events: readonly PlannedEvent[],
  ): Promise<void> {
    const { namespace, name } = issuer.metadata;
    if (changed) {
      this.#caches.wroteIssuer(namespace, name, await this.#options.writer.applyIssuerStatus(issuer, status));
    }
    for (const event of events) this.#options.events.record(issuer, event, ISSUER_KIND);
  }
}
