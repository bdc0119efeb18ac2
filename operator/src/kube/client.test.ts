import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';

import { makeClient, requestFailure, type RequestFailure } from './client.ts';

/** A kubeconfig for a plain-HTTP server on loopback: the hooks are the client's, whatever answers. */
function kubeconfigFor(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'unused' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    }),
  );
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Calls one API with every hook recorded, and says how the call ended. */
async function call(port: number, timeoutMs = 5_000) {
  const seen = { requests: 0, responses: [] as number[], failures: [] as RequestFailure[] };
  const core = makeClient(kubeconfigFor(port), CoreV1Api, {
    timeoutMs,
    onRequest: () => seen.requests++,
    onResponse: (code) => seen.responses.push(code),
    onFailure: (reason) => seen.failures.push(reason),
  });
  const outcome = await core.readNamespace({ name: 'default' }).then(
    () => 'answered',
    (error: unknown) => (error instanceof Error ? error.name : 'thrown'),
  );
  return { ...seen, outcome };
}

describe('makeClient: every request sent is answered or failed, once', () => {
  it('counts an answer, and no failure', async () => {
    const port = await listen((_request, response) => {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end('{"kind":"Status","code":404,"reason":"NotFound"}');
    });
    const seen = await call(port);
    expect(seen).toMatchObject({ requests: 1, responses: [404], failures: [] });
  });

  it('counts a request past its deadline as a timeout failure, with no answer', async () => {
    const port = await listen(() => {
      // Never answers: the request's own deadline ends it.
    });
    const seen = await call(port, 100);
    expect(seen).toMatchObject({ requests: 1, responses: [], failures: ['timeout'] });
    expect(seen.outcome).not.toBe('answered');
  });

  it('counts a connection that fails as a network failure', async () => {
    const port = await listen((request) => {
      request.socket.destroy();
    });
    const seen = await call(port);
    expect(seen).toMatchObject({ requests: 1, responses: [], failures: ['network'] });
  });
});

describe('requestFailure', () => {
  it.each([
    ['a deadline', new DOMException('late', 'TimeoutError'), 'timeout'],
    ['an abort', new DOMException('stop', 'AbortError'), 'aborted'],
    ['a reset connection', new TypeError('fetch failed'), 'network'],
    ['something not an Error', 'oops', 'network'],
  ])('names %s', (_what, error, reason) => {
    expect(requestFailure(error)).toBe(reason);
  });
});
