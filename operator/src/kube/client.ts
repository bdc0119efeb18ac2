import {
  HttpMethod,
  KubeConfig,
  RequestContext,
  ServerConfiguration,
  createConfiguration,
  type ResponseContext,
} from '@kubernetes/client-node';

import type { TokenBucket } from './rate-limiter.ts';

/** Every API call gets a deadline: the client sets none, and a stalled call would stall its worker. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface ClientOptions {
  readonly timeoutMs?: number;
  /** Called once per request with its HTTP method, e.g. to count requests by verb. */
  readonly onRequest?: (method: string) => void;
  /** Paces every request of every client that shares it. */
  readonly limiter?: TokenBucket;
}

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
  { timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS, onRequest, limiter }: ClientOptions = {},
): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const dispatcher = sharedDispatcher(kc, cluster.server);
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [
      {
        pre: async (context: RequestContext) => {
          await limiter?.take();
          const shared = await dispatcher;
          if (shared !== undefined) context.setDispatcher(shared);
          context.setSignal(AbortSignal.timeout(timeoutMs));
          context.setHeaderParam('User-Agent', 'keyrotor');
          onRequest?.(context.getHttpMethod());
          return context;
        },
        post: (response: ResponseContext) => Promise.resolve(response),
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
