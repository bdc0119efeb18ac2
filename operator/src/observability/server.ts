import { createServer, type Server } from 'node:http';

import type { Logger } from 'pino';

import { serializeError } from './logger.ts';
import type { OperatorMetrics } from './metrics.ts';

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: OperatorMetrics;
  /** Readiness: caches synced. */
  readonly ready: () => boolean;
  readonly logger: Logger;
}

/** /healthz (the process serves), /readyz (the caches have synced) and /metrics, on one port. */
export async function startServer({ host, port, metrics, ready, logger }: ServerOptions): Promise<Server> {
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
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: unknown) => {
          logger.error({ error: serializeError(error) }, 'metrics collection failed');
          response.writeHead(500).end();
        },
      );
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
