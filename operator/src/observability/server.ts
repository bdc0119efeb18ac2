import { createServer, type Server, type ServerResponse } from 'node:http';

import type { Logger } from 'pino';

import { serializeError } from './logger.ts';
import type { OperatorMetrics } from './metrics.ts';

/**
 * The answer to one scrape: 200 serve, 401 no or bad token, 403 authenticated but not allowed, 429 too
 * many reviews in flight, 503 the API server could not review it (not cached: the next scrape retries).
 */
export type MetricsDecision = 200 | 401 | 403 | 429 | 503;

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: OperatorMetrics;
  /** Readiness: caches synced. */
  readonly ready: () => boolean;
  readonly logger: Logger;
  /**
   * Decides who may read /metrics from the request's Authorization header (metrics-auth.ts); absent:
   * anyone who can reach the port (--metrics-auth=false, for local development).
   */
  readonly authorizeMetrics?: (authorization: string | undefined) => Promise<MetricsDecision>;
}

const REFUSALS: Partial<Record<MetricsDecision, string>> = {
  401: 'a bearer token is required\n',
  403: 'forbidden: needs get on nonResourceURL /metrics\n',
  429: 'too many scrapes under review\n',
  503: 'could not review the token\n',
};

/**
 * /healthz (the process serves), /readyz (the caches have synced) and /metrics, on one port. The probes
 * stay open (the kubelet sends no token); /metrics is behind authorizeMetrics when given.
 */
export async function startServer({
  host,
  port,
  metrics,
  ready,
  logger,
  authorizeMetrics,
}: ServerOptions): Promise<Server> {
  const serveMetrics = (response: ServerResponse) => {
    metrics.registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (error: unknown) => {
        logger.error({ error: serializeError(error) }, 'metrics collection failed');
        response.writeHead(500).end();
      },
    );
  };
  const server = createServer((request, response) => {
    const path = request.url?.split('?')[0];
    if (request.method !== 'GET') {
      response.writeHead(405).end();
    } else if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const isReady = ready();
      response
        .writeHead(isReady ? 200 : 503, { 'content-type': 'text/plain' })
        .end(isReady ? 'ok\n' : 'caches not synced\n');
    } else if (path === '/metrics') {
      const deciding = authorizeMetrics?.(request.headers.authorization) ?? Promise.resolve(200 as const);
      void deciding.then((decision) => {
        if (decision === 200) {
          serveMetrics(response);
          return;
        }
        const headers: Record<string, string> = { 'content-type': 'text/plain' };
        if (decision === 401) headers['www-authenticate'] = 'Bearer';
        if (decision === 429 || decision === 503) headers['retry-after'] = '1';
        response.writeHead(decision, headers).end(REFUSALS[decision]);
      });
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      resolve();
    });
  });
  return server;
}
