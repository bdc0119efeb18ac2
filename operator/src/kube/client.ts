import {
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  RequestContext,
  ServerConfiguration,
  createConfiguration,
  wrapHttpLibrary,
  type ResponseContext,
} from '@kubernetes/client-node';

import { KubeError, retryAfterMs } from './errors.ts';
import type { TokenBucket } from './rate-limiter.ts';

/** Every API call gets a deadline: the client sets none, and a stalled call would stall its worker. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface ClientOptions {
  readonly timeoutMs?: number;
  /** Called once per request with its HTTP method, e.g. to count requests by verb. */
  readonly onRequest?: (method: string) => void;
  /** Called once per answer with its HTTP status (client-node's middleware cannot tie it to its request). */
  readonly onResponse?: (code: number) => void;
  /**
   * Called once per sent request that got no answer: its deadline passed (`timeout`), it was aborted,
   * or the connection failed (`network`). With onResponse, every onRequest is matched by one of the two.
   */
  readonly onFailure?: (reason: RequestFailure) => void;
  /** Paces every request of every client that shares it. */
  readonly limiter?: TokenBucket;
  /**
   * Milliseconds this process may still write (leader election's fence). A write is refused when it is
   * zero or less, and aborted when it runs out, so no write of a deposed leader is still in flight
   * when another replica can take over. Reads are not fenced: standbys keep warm caches.
   */
  readonly writeBudgetMs?: () => number;
  /** Sent as User-Agent; names the replica, so the API server's audit log tells replicas apart. */
  readonly userAgent?: string;
}

export type RequestFailure = 'timeout' | 'aborted' | 'network';

/** Why fetch rejected, by the error's name: AbortSignal.timeout rejects with a TimeoutError. */
export function requestFailure(error: unknown): RequestFailure {
  const name = error instanceof Error ? error.name : '';
  if (name === 'TimeoutError') return 'timeout';
  if (name === 'AbortError') return 'aborted';
  return 'network';
}

/** A write refused because this replica is not (or no longer) the leader. */
export const NOT_LEADER = 'NotLeader';

type Dispatcher = ReturnType<RequestContext['getDispatcher']>;
const sharedDispatchers = new WeakMap<KubeConfig, Promise<Dispatcher>>();

/**
 * One connection pool per kubeconfig. client-node 2.0.1 builds a new undici Agent, so a new TLS
 * connection, for every request (KubeConfig.applySecurityAuthentication calls createDispatcher each
 * time); reusing the first one keeps connections alive across requests.
 */
function sharedDispatcher(kc: KubeConfig, server: string): Promise<Dispatcher> {
  let dispatcher = sharedDispatchers.get(kc);
  if (dispatcher === undefined) {
    const probe = new RequestContext(server, HttpMethod.GET);
    dispatcher = kc.applySecurityAuthentication(probe).then(() => probe.getDispatcher());
    sharedDispatchers.set(kc, dispatcher);
  }
  return dispatcher;
}

/**
 * Like KubeConfig.makeApiClient, plus a shared connection pool, a per-request timeout and a request
 * hook. The API types are the generated ones (CoreV1Api, CustomObjectsApi, ...).
 */
export function makeClient<T>(
  kc: KubeConfig,
  apiType: new (configuration: ReturnType<typeof createConfiguration>) => T,
  {
    timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
    onRequest,
    onResponse,
    onFailure,
    limiter,
    writeBudgetMs,
    userAgent = 'keyrotor',
  }: ClientOptions = {},
): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const dispatcher = sharedDispatcher(kc, cluster.server);
  // The middleware's post hook runs only for an answer; a request that fails in fetch (its deadline, a
  // reset connection) is seen here, so that every request counted as sent is counted as done.
  const fetchLibrary = new IsomorphicFetchHttpLibrary();
  const httpApi = wrapHttpLibrary({
    send: (request) =>
      fetchLibrary
        .send(request)
        .toPromise()
        .catch((error: unknown) => {
          onFailure?.(requestFailure(error));
          throw error;
        }),
  });
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    httpApi,
    authMethods: { default: kc },
    promiseMiddleware: [
      {
        pre: async (context: RequestContext) => {
          await limiter?.take();
          const shared = await dispatcher;
          if (shared !== undefined) context.setDispatcher(shared);
          const method = context.getHttpMethod();
          // Checked after every wait (the rate limit's can be long) and turned into the abort timer in
          // the same tick, so no await can stretch the deadline. The budget is on the monotonic clock
          // (LeaderElector.writeBudgetMs), and so are timers: a wall clock step moves neither.
          const budget =
            method === HttpMethod.GET || writeBudgetMs === undefined ? Infinity : writeBudgetMs();
          if (budget <= 0) {
            throw new KubeError(
              `${method} ${new URL(context.getUrl()).pathname}`,
              undefined,
              NOT_LEADER,
              'this replica is not the leader, so it does not write',
            );
          }
          // Whole milliseconds (AbortSignal.timeout throws on a fraction), rounded down to stay inside.
          context.setSignal(AbortSignal.timeout(Math.floor(Math.min(timeoutMs, budget))));
          context.setHeaderParam('User-Agent', userAgent);
          onRequest?.(method);
          return context;
        },
        post: (response: ResponseContext) => {
          onResponse?.(response.httpStatusCode);
          // Priority and fairness says when to come back: every request of the process waits that long.
          if (response.httpStatusCode === 429) {
            const wait = retryAfterMs(response.headers['retry-after']) ?? 1_000;
            limiter?.pauseFor(wait);
          }
          return Promise.resolve(response);
        },
      },
    ],
  });
  return new apiType(configuration);
}

/** Loads KUBECONFIG or ~/.kube/config, or the in-cluster ServiceAccount when running in a Pod. */
export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath !== undefined) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  return kc;
}
