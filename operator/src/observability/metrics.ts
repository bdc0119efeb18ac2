import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { ApiKey } from '../api/types.ts';

export interface MetricSources {
  /** ApiKeys in the cache, for the per-key and per-state gauges. */
  readonly apiKeys: () => readonly ApiKey[];
  readonly queueDepth: () => number;
  readonly ready: () => boolean;
  /** True while this replica holds the leader Lease (always, without leader election). */
  readonly leading: () => boolean;
}

/** The operator's Prometheus metrics, in a registry of its own (one per operator in a process). */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles: Counter<'result'>;
  readonly reconcileDuration: Histogram;
  readonly rotations: Counter<'reason'>;
  readonly apiRequests: Counter<'method'>;
  readonly apiResponses: Counter<'code'>;
  readonly apiFailures: Counter<'reason'>;
  readonly queueWait: Histogram;
  readonly queueRetries: Counter;
  readonly informerTransitions: Counter<'kind'>;
  readonly secretWriteFailures: Counter;
  readonly verifierWrites: Counter;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'keyrotor_' });
    this.reconciles = new Counter({
      name: 'keyrotor_reconcile_total',
      help: 'Reconciles of ApiKeys, by result (success or error).',
      labelNames: ['result'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'keyrotor_reconcile_duration_seconds',
      help: 'Time to reconcile one ApiKey, API calls included.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.rotations = new Counter({
      name: 'keyrotor_rotations_total',
      help: 'Keys replaced, by reason (Expiry, Schedule, Manual, Drift, Revoked, SpecChange).',
      labelNames: ['reason'],
      registers,
    });
    this.apiRequests = new Counter({
      name: 'keyrotor_api_requests_total',
      help: 'Requests to the Kubernetes API server, by HTTP method.',
      labelNames: ['method'],
      registers,
    });
    this.apiResponses = new Counter({
      name: 'keyrotor_api_responses_total',
      help: 'Answers from the Kubernetes API server, by HTTP status code.',
      labelNames: ['code'],
      registers,
    });
    this.apiFailures = new Counter({
      name: 'keyrotor_api_failures_total',
      help: 'Requests to the Kubernetes API server that got no answer, by reason (timeout, aborted, network).',
      labelNames: ['reason'],
      registers,
    });
    this.queueWait = new Histogram({
      name: 'keyrotor_workqueue_queue_duration_seconds',
      help: 'How long an ApiKey waited in the work queue before it was reconciled.',
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
      registers,
    });
    this.queueRetries = new Counter({
      name: 'keyrotor_workqueue_retries_total',
      help: 'Reconciles that failed and were queued again with backoff.',
      registers,
    });
    this.informerTransitions = new Counter({
      name: 'keyrotor_informer_transitions_total',
      help: 'Watch restarts after a failure, relists, and watches found silent too long, by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.secretWriteFailures = new Counter({
      name: 'keyrotor_secret_write_failures_total',
      help: 'Secret writes the API server refused or failed (conflicts excluded).',
      registers,
    });
    this.verifierWrites = new Counter({
      name: 'keyrotor_verifier_writes_total',
      help: "Writes of issuers' verifier Secrets (batched: one per interval however many keys changed).",
      registers,
    });
    new Gauge({
      name: 'keyrotor_workqueue_depth',
      help: 'ApiKeys waiting in the work queue.',
      registers,
      collect() {
        this.set(sources.queueDepth());
      },
    });
    new Gauge({
      name: 'keyrotor_ready',
      help: '1 when every cache has synced and the operator is reconciling.',
      registers,
      collect() {
        this.set(sources.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'keyrotor_leader',
      help: '1 while this replica is the leader and reconciles; standbys report 0.',
      registers,
      collect() {
        this.set(sources.leading() ? 1 : 0);
      },
    });
    const byState = new Gauge({
      name: 'keyrotor_apikeys',
      help: 'ApiKeys by the reason of their Ready condition (KeyIssued, Revoked, InvalidSpec, ...).',
      labelNames: ['ready', 'reason'],
      registers,
      collect() {
        byState.reset();
        for (const apiKey of sources.apiKeys()) {
          const ready = apiKey.status?.conditions?.find((condition) => condition.type === 'Ready');
          byState.inc({ ready: ready?.status ?? 'Unknown', reason: ready?.reason ?? 'Pending' });
        }
      },
    });
    const timestamps = (name: string, help: string, field: 'expiresAt' | 'nextRotationAt') => {
      const gauge: Gauge<'namespace' | 'name'> = new Gauge({
        name,
        help,
        labelNames: ['namespace', 'name'],
        registers,
        collect() {
          gauge.reset();
          for (const apiKey of sources.apiKeys()) {
            const value = apiKey.status?.[field];
            if (value === undefined) continue;
            gauge.set(
              { namespace: apiKey.metadata.namespace, name: apiKey.metadata.name },
              new Date(value).getTime() / 1000,
            );
          }
        },
      });
    };
    timestamps(
      'keyrotor_apikey_expiration_timestamp_seconds',
      'When the current key of each ApiKey expires (Unix time).',
      'expiresAt',
    );
    timestamps(
      'keyrotor_apikey_next_rotation_timestamp_seconds',
      'When each ApiKey rotates next (Unix time).',
      'nextRotationAt',
    );
  }
}
