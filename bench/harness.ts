// What every benchmark needs: the operator as a separate process, and the harness's own clients (their
// requests told apart from the operator's in the API server's audit log: bench/audit.ts).
import { execFile } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from '@kubernetes/client-node';

import { GROUP, PLURAL, VERSION } from '../operator/src/api/names.ts';
import type { ApiKey, ApiKeySpec } from '../operator/src/api/types.ts';
import { makeClient } from '../operator/src/kube/client.ts';
import { apiKeyManifest } from '../test/support/operator.ts';
import { HARNESS_AGENT } from './audit.ts';
export { startOperatorProcess, type OperatorProcess } from '../test/support/operator-process.ts';

export const repoRoot = path.resolve(import.meta.dirname, '..');
/**
 * Follows the ApiKeys of a namespace: the client's Watch ends after 30 s without events and on any
 * error, so this watches again from the last resourceVersion until stopped.
 */
export function followApiKeys(kc: KubeConfig, namespace: string, onEvent: (apiKey: ApiKey) => void) {
  let stopped = false;
  let resourceVersion: string | undefined;
  let request: AbortController | undefined;
  const watch = new Watch(kc);
  const connect = async (): Promise<void> => {
    if (stopped) return;
    request = await watch.watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
      { allowWatchBookmarks: true, ...(resourceVersion ? { resourceVersion } : {}) },
      (phase: string, apiKey: ApiKey) => {
        resourceVersion = apiKey.metadata.resourceVersion ?? resourceVersion;
        if (phase !== 'BOOKMARK' && phase !== 'ERROR') onEvent(apiKey);
      },
      () => {
        setTimeout(() => void connect().catch(() => undefined), 100);
      },
    );
  };
  const started = connect();
  return {
    started,
    stop: () => {
      stopped = true;
      request?.abort();
    },
  };
}

/** Records when each ApiKey of a namespace first became Ready. */
export async function watchReady(kc: KubeConfig, namespace: string) {
  const readyAt = new Map<string, number>();
  const follower = followApiKeys(kc, namespace, (apiKey) => {
    const ready = apiKey.status?.conditions?.find((condition) => condition.type === 'Ready');
    if (ready?.status === 'True' && !readyAt.has(apiKey.metadata.name))
      readyAt.set(apiKey.metadata.name, performance.now());
  });
  await follower.started;
  return { readyAt, stop: follower.stop };
}

/**
 * Creates ApiKeys bench-0 ... bench-(n-1), `parallel` at a time; returns when each create was sent.
 * `onCreated` is called as each create returns.
 */
export async function createApiKeys(
  kc: KubeConfig,
  namespace: string,
  count: number,
  parallel = 32,
  spec: Partial<ApiKeySpec> = {},
  onCreated: (name: string) => void = () => undefined,
) {
  const custom = makeClient(kc, CustomObjectsApi, { userAgent: HARNESS_AGENT });
  const createdAt = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const name = `bench-${next++}`;
      createdAt.set(name, performance.now());
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        body: apiKeyManifest(namespace, name, spec),
      });
      onCreated(name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return createdAt;
}

export async function createNamespace(kc: KubeConfig, name: string): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** The commit measured, marked -dirty when the work tree has changes. */
export async function commit(): Promise<string> {
  const git = (args: string[]) =>
    new Promise<string>((resolve) => {
      execFile('git', args, { cwd: repoRoot }, (error, stdout) => {
        resolve(error ? '' : stdout.trim());
      });
    });
  const hash = (await git(['rev-parse', '--short', 'HEAD'])) || 'unknown';
  return (await git(['status', '--porcelain'])) === '' ? hash : `${hash}-dirty`;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`;
}

/** Appends a run to a results file: a heading with the date, the machine, a row per scenario. */
export async function appendResults(file: string, title: string, results: Record<string, unknown>) {
  const rows = Object.entries(results)
    .map(([name, result]) => `| ${name} | \`${JSON.stringify(result)}\` |`)
    .join('\n');
  const date = new Date().toISOString().slice(0, 16);
  await appendFile(
    file,
    `\n## ${date}Z, ${title}, ${await commit()}\n\n${machine()}\n\n| scenario | result |\n| --- | --- |\n${rows}\n`,
  );
}
