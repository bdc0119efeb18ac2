import { createHash } from 'node:crypto';

import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';

import type { MetricsDecision } from '../observability/server.ts';
import { makeClient } from './client.ts';
import { call, errorFields } from './errors.ts';

/** The answers worth keeping: the API server's own (not throttling, not its failures). */
type CachedDecision = 200 | 401 | 403;

export interface MetricsAuthOptions {
  readonly kc: KubeConfig;
  readonly logger: Logger;
  /** Where keyrotor_metrics_auth_reviews_total is registered (the operator's registry). */
  readonly registry: Registry;
  /** How long a review's answer (allowed or refused) is reused; default 10 s. */
  readonly ttlMs?: number;
  /** Most answers remembered; default 1024 (a flood of made-up tokens cannot grow memory). */
  readonly maxEntries?: number;
  /** Most scrapes reviewed at once; beyond it a scrape gets 429 and costs the API server nothing. */
  readonly maxInFlight?: number;
  readonly now?: () => number;
}

/** The path and verb a scraper must be granted, as controller-runtime's metrics filter asks. */
export const METRICS_PATH = '/metrics';
const METRICS_VERB = 'get';
const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * /metrics behind the API server's own authentication and RBAC (as controller-runtime's
 * filters.WithAuthenticationAndAuthorization): the bearer token is checked with a TokenReview, its user
 * with a SubjectAccessReview for nonResourceURL /metrics, verb get. The metrics name every ApiKey's
 * namespace, name and expiry, so only those granted the chart's `<fullname>-metrics-reader` ClusterRole
 * may read them. Answers are cached briefly by the token's SHA-256 (never the token itself), so a
 * scrape every 30 s costs two API calls per TTL at most, not two per scrape.
 */
export class MetricsAuth {
  readonly #authn: AuthenticationV1Api;
  readonly #authz: AuthorizationV1Api;
  readonly #logger: Logger;
  readonly #maxInFlight: number;
  readonly #now: () => number;
  readonly #reviews: Counter<'kind'>;
  readonly #cache: DecisionCache;
  /** Reviews in flight by token digest: concurrent scrapes with one token share one review. */
  readonly #inFlight = new Map<string, Promise<MetricsDecision>>();

  constructor(options: MetricsAuthOptions) {
    this.#authn = makeClient(options.kc, AuthenticationV1Api, { timeoutMs: 5_000 });
    this.#authz = makeClient(options.kc, AuthorizationV1Api, { timeoutMs: 5_000 });
    this.#logger = options.logger;
    this.#cache = new DecisionCache(options.ttlMs ?? 10_000, options.maxEntries ?? 1024);
    this.#maxInFlight = options.maxInFlight ?? 16;
    this.#now = options.now ?? Date.now;
    this.#reviews = new Counter({
      name: 'keyrotor_metrics_auth_reviews_total',
      help: 'TokenReviews and SubjectAccessReviews sent to authorize scrapes of /metrics (cache misses).',
      labelNames: ['kind'],
      registers: [options.registry],
    });
  }

  /** Decides one request from its Authorization header. Never throws, never logs the token. */
  async authorize(authorization: string | undefined): Promise<MetricsDecision> {
    const token = BEARER.exec(authorization ?? '')?.[1];
    if (token === undefined) return 401;
    const digest = createHash('sha256').update(token).digest('hex');
    const cached = this.#cache.get(digest, this.#now());
    if (cached !== undefined) return cached;
    const pending = this.#inFlight.get(digest);
    if (pending !== undefined) return pending;
    if (this.#inFlight.size >= this.#maxInFlight) return 429;
    const review = this.#review(token)
      .then((decision) => {
        if (decision === 200 || decision === 401 || decision === 403)
          this.#cache.set(digest, decision, this.#now());
        return decision;
      })
      .finally(() => this.#inFlight.delete(digest));
    this.#inFlight.set(digest, review);
    return review;
  }

  async #review(token: string): Promise<MetricsDecision> {
    try {
      this.#reviews.inc({ kind: 'tokenreview' });
      const authenticated = await call('create TokenReview for /metrics', () =>
        this.#authn.createTokenReview({ body: { spec: { token } } }),
      );
      const user = authenticated.status?.user;
      if (authenticated.status?.authenticated !== true || user?.username === undefined) return 401;
      const username = user.username;
      this.#reviews.inc({ kind: 'subjectaccessreview' });
      const access = await call('create SubjectAccessReview for /metrics', () =>
        this.#authz.createSubjectAccessReview({
          body: {
            spec: {
              user: username,
              ...(user.uid === undefined ? {} : { uid: user.uid }),
              ...(user.groups === undefined ? {} : { groups: user.groups }),
              ...(user.extra === undefined ? {} : { extra: user.extra }),
              nonResourceAttributes: { path: METRICS_PATH, verb: METRICS_VERB },
            },
          },
        }),
      );
      if (access.status?.allowed === true) return 200;
      // Who was refused is worth a line (a scraper missing its binding); the token never is.
      this.#logger.debug({ user: username }, 'refused a scrape of /metrics');
      return 403;
    } catch (error) {
      // Not the server's message: an error about a review may quote what it was sent, the token.
      const { call: what, status, reason } = errorFields(error);
      this.#logger.warn({ error: { call: what, status, reason } }, 'could not review a scrape of /metrics');
      return 503;
    }
  }
}

/**
 * Answers by token digest for `ttlMs`, at most `maxEntries` of them: when full, expired answers go first,
 * then the oldest (Map order is insertion order), which are the nearest to expiry anyway.
 */
export class DecisionCache {
  readonly #entries = new Map<string, { decision: CachedDecision; until: number }>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(ttlMs: number, maxEntries: number) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(digest: string, now: number): CachedDecision | undefined {
    const entry = this.#entries.get(digest);
    if (entry === undefined) return undefined;
    if (entry.until > now) return entry.decision;
    this.#entries.delete(digest);
    return undefined;
  }

  set(digest: string, decision: CachedDecision, now: number): void {
    this.#entries.delete(digest);
    if (this.#entries.size >= this.#maxEntries) {
      for (const [key, entry] of this.#entries) if (entry.until <= now) this.#entries.delete(key);
      const oldest = this.#entries.keys().next();
      if (this.#entries.size >= this.#maxEntries && oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(digest, { decision, until: now + this.#ttlMs });
  }
}
