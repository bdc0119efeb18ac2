import { EventsV1Api, V1MicroTime, type KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';

import { API_VERSION, KIND, REPORTING_CONTROLLER } from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import { scrubKeys } from '../observability/logger.ts';
import type { PlannedEvent } from '../reconcile/decide.ts';
import { makeClient, type ClientOptions } from './client.ts';
import { toKubeError } from './errors.ts';

/** events.k8s.io/v1 limits a note to 1 KiB. */
const MAX_NOTE = 1024;
/** The same event for the same object within this window is sent once. */
const DEDUP_WINDOW_MS = 60_000;
const MAX_REMEMBERED = 10_000;

/**
 * Records Events on ApiKeys (events.k8s.io/v1). Best effort by design: an Event that cannot be
 * written is logged and dropped, never failing the reconcile that produced it.
 */
export class EventRecorder {
  readonly #api: EventsV1Api;
  readonly #logger: Logger;
  readonly #instance: string;
  readonly #now: () => Date;
  readonly #recent = new Map<string, number>();
  readonly #pending = new Set<Promise<void>>();

  constructor(
    kc: KubeConfig,
    logger: Logger,
    options: ClientOptions & { instance: string; now?: () => Date },
  ) {
    this.#api = makeClient(kc, EventsV1Api, options);
    this.#logger = logger;
    this.#instance = options.instance;
    this.#now = options.now ?? (() => new Date());
  }

  record(apiKey: ApiKey, event: PlannedEvent): void {
    const { name, namespace, uid } = apiKey.metadata;
    const now = this.#now();
    const note = scrubKeys(event.note).slice(0, MAX_NOTE);
    const dedupKey = `${uid}\n${event.reason}\n${note}`;
    const last = this.#recent.get(dedupKey);
    if (last !== undefined && now.getTime() - last < DEDUP_WINDOW_MS) return;
    this.#remember(dedupKey, now.getTime());

    const body = {
      metadata: { name: `${name}.${randomBytes(8).toString('hex')}`, namespace },
      eventTime: new V1MicroTime(now.getTime()),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.#instance,
      action: event.action,
      reason: event.reason,
      type: event.type,
      note,
      regarding: {
        apiVersion: API_VERSION,
        kind: KIND,
        name,
        namespace,
        uid,
        ...(apiKey.metadata.resourceVersion ? { resourceVersion: apiKey.metadata.resourceVersion } : {}),
      },
    };
    const sent = this.#api
      .createNamespacedEvent({ namespace, body })
      .then(
        () => undefined,
        (error: unknown) => {
          const failure = toKubeError(`create Event for ApiKey ${namespace}/${name}`, error);
          this.#logger.warn({ err: failure, reason: event.reason }, 'could not record an event');
        },
      )
      .finally(() => this.#pending.delete(sent));
    this.#pending.add(sent);
  }

  /** Waits for the events in flight, e.g. before the process exits. */
  async flush(): Promise<void> {
    await Promise.all(this.#pending);
  }

  #remember(key: string, at: number): void {
    if (this.#recent.size >= MAX_REMEMBERED) {
      for (const [oldKey, time] of this.#recent)
        if (at - time >= DEDUP_WINDOW_MS) this.#recent.delete(oldKey);
      if (this.#recent.size >= MAX_REMEMBERED) this.#recent.clear();
    }
    this.#recent.set(key, at);
  }
}
