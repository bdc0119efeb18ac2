import { EventsV1Api, V1MicroTime, type EventsV1Event, type KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';

import { API_VERSION, KIND, REPORTING_CONTROLLER } from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';
import { scrubKeys } from '../observability/logger.ts';
import type { PlannedEvent } from '../reconcile/planned.ts';
import { makeClient, type ClientOptions } from './client.ts';
import { errorFields, toKubeError } from './errors.ts';

/** events.k8s.io/v1 limits a note to 1 KiB: 1024 bytes of UTF-8, as the API server counts. */
export const MAX_NOTE_BYTES = 1024;
/** The same event for the same object within this window is sent once. */
const DEDUP_WINDOW_MS = 60_000;
const MAX_REMEMBERED = 10_000;
const MAX_THROTTLED_ATTEMPTS = 5;

/**
 * A note as an Event may carry it: key material (raw or encoded) scrubbed, then cut to MAX_NOTE_BYTES
 * of UTF-8 on a character boundary, ending in "…" when cut, so the API server never refuses the Event.
 */
export function eventNote(text: string): string {
  const note = scrubKeys(text);
  if (Buffer.byteLength(note, 'utf8') <= MAX_NOTE_BYTES) return note;
  const ellipsis = '…';
  let budget = MAX_NOTE_BYTES - Buffer.byteLength(ellipsis, 'utf8');
  let end = 0;
  for (const character of note) {
    budget -= Buffer.byteLength(character, 'utf8');
    if (budget < 0) break;
    end += character.length;
  }
  return `${note.slice(0, end)}${ellipsis}`;
}

/**
 * Records Events on ApiKeys (events.k8s.io/v1). Best effort by design: an Event that cannot be
 * written (after up to 5 tries when throttled) is logged and dropped, never failing the reconcile
 * that produced it.
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

  /** Records an event regarding an ApiKey, or an object of another keyrotor.dev `kind`. */
  record(object: Pick<ApiKey, 'metadata'>, event: PlannedEvent, kind: string = KIND): void {
    const { name, namespace, uid } = object.metadata;
    const now = this.#now();
    const note = eventNote(event.note);
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
        kind,
        name,
        namespace,
        uid,
        ...(object.metadata.resourceVersion ? { resourceVersion: object.metadata.resourceVersion } : {}),
      },
    };
    const sent = this.#send(namespace, body, `create Event for ${kind} ${namespace}/${name}`)
      .catch((failure: unknown) => {
        this.#logger.warn({ error: errorFields(failure), reason: event.reason }, 'could not record an event');
      })
      .finally(() => this.#pending.delete(sent));
    this.#pending.add(sent);
  }

  /** Sends an event; a throttled one (429) is sent again after the server's Retry-After, up to 5 tries. */
  async #send(namespace: string, body: EventsV1Event, call: string): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.#api.createNamespacedEvent({ namespace, body });
        return;
      } catch (error) {
        const failure = toKubeError(call, error);
        if (failure.status !== 429 || attempt >= MAX_THROTTLED_ATTEMPTS) throw failure;
        await new Promise((resolve) => setTimeout(resolve, failure.retryAfterMs ?? 1_000));
      }
    }
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
