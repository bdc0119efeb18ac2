import {
  KubeConfig,
  ServerConfiguration,
  createConfiguration,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

/** Every API call gets a deadline: the client sets none, and a stalled call would stall its worker. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface ClientOptions {
  readonly timeoutMs?: number;
  /** Called once per request with its HTTP method, e.g. to count requests by verb. */
  readonly onRequest?: (method: string) => void;
}

/**
 * Like KubeConfig.makeApiClient, plus a per-request timeout and a request hook. The API types are the
 * generated ones (CoreV1Api, CustomObjectsApi, ...).
 */
export function makeClient<T>(
  kc: KubeConfig,
  apiType: new (configuration: ReturnType<typeof createConfiguration>) => T,
  { timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS, onRequest }: ClientOptions = {},
): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [
      {
        pre: (context: RequestContext) => {
          context.setSignal(AbortSignal.timeout(timeoutMs));
          context.setHeaderParam('User-Agent', 'keyrotor');
          onRequest?.(context.getHttpMethod());
          return Promise.resolve(context);
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
