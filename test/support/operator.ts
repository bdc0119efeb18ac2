import { Writable } from 'node:stream';

import {
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';

import { ANNOTATION_ROTATE, GROUP, ISSUER_PLURAL, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKey, ApiKeyIssuer, ApiKeyIssuerSpec, ApiKeySpec } from '../../operator/src/api/types.ts';
import { Controller, type ControllerOptions } from '../../operator/src/controller/controller.ts';
import { createLogger } from '../../operator/src/observability/logger.ts';
import { statusCode } from './kube.ts';
import { waitFor } from './wait.ts';

/** An operator running in the test process, watching one namespace, with its log lines captured. */
export interface TestOperator {
  readonly controller: Controller;
  /** Every line the operator logged, as written (after redaction). */
  readonly logLines: string[];
  /**
   * With `{ unscrubbedLogs: true }`: every line before the logger's final scrub (pino's path redaction
   * has run), as the operator formatted it. Empty otherwise.
   */
  readonly unscrubbedLogLines: string[];
  /** API requests by HTTP method since start. */
  readonly requests: Map<string, number>;
  stop(): Promise<void>;
}

export async function startOperator(
  kc: KubeConfig,
  namespace: string,
  overrides: Partial<ControllerOptions> = {},
  { unscrubbedLogs = false }: { readonly unscrubbedLogs?: boolean } = {},
): Promise<TestOperator> {
  const logLines: string[] = [];
  const unscrubbedLogLines: string[] = [];
  const splitLines = (text: string) => text.split('\n').filter((line) => line !== '');
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(...splitLines(chunk.toString('utf8')));
      callback();
    },
  });
  const requests = new Map<string, number>();
  const controller = new Controller({
    kc,
    logger: createLogger({
      level: 'debug',
      destination,
      ...(unscrubbedLogs
        ? { beforeScrub: (line: string) => unscrubbedLogLines.push(...splitLines(line)) }
        : {}),
    }),
    namespaces: [namespace],
    concurrency: 4,
    instance: 'test',
    onRequest: (method) => requests.set(method, (requests.get(method) ?? 0) + 1),
    ...overrides,
  });
  await controller.start();
  return { controller, logLines, unscrubbedLogLines, requests, stop: () => controller.stop() };
}

/** Requests that change something: everything but GET (reads, lists and watches). */
export function writeCount(requests: Map<string, number>): number {
  return [...requests].filter(([method]) => method !== 'GET').reduce((total, [, count]) => total + count, 0);
}

export function apiKeyManifest(namespace: string, name: string, spec: Partial<ApiKeySpec> = {}) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'ApiKey',
    metadata: { name, namespace },
    spec: { scopes: ['prices:read'], ...spec },
  };
}

export async function createApiKey(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: Partial<ApiKeySpec> = {},
) {
  return (await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body: apiKeyManifest(namespace, name, spec),
  })) as ApiKey;
}

export async function readApiKey(kc: KubeConfig, namespace: string, name: string): Promise<ApiKey> {
  return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    name,
  })) as ApiKey;
}

/** Waits until the ApiKey's Ready condition has `status` (and `reason`, when given) for its generation. */
export async function waitForReady(
  kc: KubeConfig,
  namespace: string,
  name: string,
  {
    status = 'True',
    reason,
    keyIdNot,
    timeoutMs = 30_000,
  }: { status?: string; reason?: string; keyIdNot?: string; timeoutMs?: number } = {},
): Promise<ApiKey> {
  return waitFor(
    async () => {
      const apiKey = await readApiKey(kc, namespace, name).catch((error: unknown) => {
        if (statusCode(error) === 404) return undefined;
        throw error;
      });
      const ready = apiKey?.status?.conditions?.find((condition) => condition.type === 'Ready');
      const matches =
        ready?.status === status &&
        (reason === undefined || ready.reason === reason) &&
        apiKey?.status?.observedGeneration === apiKey?.metadata.generation &&
        (keyIdNot === undefined || apiKey?.status?.keyId !== keyIdNot);
      return matches ? apiKey : undefined;
    },
    {
      description: `ApiKey ${namespace}/${name} Ready=${status}${reason ? ` (${reason})` : ''}`,
      timeoutMs,
    },
  );
}

export interface RecordedEvent {
  readonly reason: string;
  readonly type: string;
  readonly note: string;
  readonly reportingController: string;
}

/** Events regarding one ApiKey, oldest first. */
export async function eventsFor(kc: KubeConfig, namespace: string, name: string): Promise<RecordedEvent[]> {
  const list = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
  return list.items
    .filter((event) => event.regarding?.name === name && event.regarding.kind === 'ApiKey')
    .sort((a, b) => new Date(a.eventTime).getTime() - new Date(b.eventTime).getTime())
    .map((event) => ({
      reason: event.reason ?? '',
      type: event.type ?? '',
      note: event.note ?? '',
      reportingController: event.reportingController ?? '',
    }));
}

/** Waits until an event with `reason` regards the ApiKey. */
export async function waitForEvent(kc: KubeConfig, namespace: string, name: string, reason: string) {
  return waitFor(
    async () => (await eventsFor(kc, namespace, name)).find((event) => event.reason === reason),
    { description: `a ${reason} event on ApiKey ${namespace}/${name}`, timeoutMs: 30_000 },
  );
}

/** Decodes a Secret's data field. */
export function secretValue(
  secret: { data?: Record<string, string> } | undefined,
  field: string,
): string | undefined {
  const value = secret?.data?.[field];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

export async function listApiKeys(kc: KubeConfig, namespace: string): Promise<ApiKey[]> {
  const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
  })) as { items: ApiKey[] };
  return list.items;
}

/** Asks for a rotation the way a person does: a new value of the keyrotor.dev/rotate annotation. */
export async function requestRotation(kc: KubeConfig, namespace: string, name: string, request: string) {
  await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name,
      body: { metadata: { annotations: { [ANNOTATION_ROTATE]: request } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/**
 * Waits until the namespace holds exactly `count` ApiKeys, each Ready for its generation, and those
 * named in `rotated` (all of them when omitted) have handled rotation `request`.
 */
export async function waitForAllReady(
  kc: KubeConfig,
  namespace: string,
  { count, request, rotated }: { count: number; request?: string; rotated?: readonly string[] },
): Promise<ApiKey[]> {
  return waitFor(
    async () => {
      const all = await listApiKeys(kc, namespace);
      const done = all.every((apiKey) => {
        const ready = apiKey.status?.conditions?.find((condition) => condition.type === 'Ready');
        const wanted = rotated === undefined || rotated.includes(apiKey.metadata.name) ? request : undefined;
        return (
          ready?.status === 'True' &&
          apiKey.status?.observedGeneration === apiKey.metadata.generation &&
          (wanted === undefined || apiKey.status?.lastRotateRequest === wanted)
        );
      });
      return all.length === count && done ? all : undefined;
    },
    {
      description: `${count} ApiKeys in ${namespace} Ready${request ? ` after rotation ${request}` : ''}`,
      timeoutMs: 120_000,
      intervalMs: 100,
    },
  );
}

export async function createIssuer(kc: KubeConfig, namespace: string, name: string, spec: ApiKeyIssuerSpec) {
  return (await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: ISSUER_PLURAL,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ApiKeyIssuer', metadata: { name, namespace }, spec },
  })) as ApiKeyIssuer;
}

export async function readIssuer(kc: KubeConfig, namespace: string, name: string): Promise<ApiKeyIssuer> {
  return (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: ISSUER_PLURAL,
    name,
  })) as ApiKeyIssuer;
}

/** Waits until the issuer's status satisfies `accept` (e.g. a verifier revision, a count). */
export async function waitForIssuer(
  kc: KubeConfig,
  namespace: string,
  name: string,
  accept: (issuer: ApiKeyIssuer) => boolean,
  description: string,
): Promise<ApiKeyIssuer> {
  return waitFor(
    async () => {
      const issuer = await readIssuer(kc, namespace, name);
      return accept(issuer) ? issuer : undefined;
    },
    { description: `ApiKeyIssuer ${namespace}/${name}: ${description}` },
  );
}
