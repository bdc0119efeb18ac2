import { randomBytes } from 'node:crypto';
import https from 'node:https';

import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  type V1NamedRuleWithOperations,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { inject } from 'vitest';

import { waitFor } from './wait.ts';

/** The admin identity of the run's control plane (group system:masters). */
export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfig'));
  return kc;
}

/** A KubeConfig for the same server that authenticates with a bearer token (e.g. a ServiceAccount's). */
export function tokenKubeConfig(admin: KubeConfig, token: string): KubeConfig {
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'token-user', token }],
    contexts: [{ name: 'token', cluster: cluster.name, user: 'token-user' }],
    currentContext: 'token',
  });
  return kc;
}

export function statusCode(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number'
    ? error.code
    : undefined;
}

/** Resolves to the HTTP status the call failed with; fails the test if the call succeeded. */
export async function failureStatus(
  call: Promise<unknown>,
): Promise<{ code: number | undefined; body: string }> {
  try {
    await call;
  } catch (error) {
    const body = (error as { body?: unknown }).body;
    return { code: statusCode(error), body: typeof body === 'string' ? body : JSON.stringify(body) };
  }
  throw new Error('expected the API call to fail, but it succeeded');
}

/** Polls a read until it answers 404. */
export async function waitForNotFound(read: () => Promise<unknown>, description: string, timeoutMs = 60_000) {
  await waitFor(
    async () => {
      try {
        await read();
        return undefined;
      } catch (error) {
        if (statusCode(error) === 404) return true;
        throw error;
      }
    },
    { description, timeoutMs },
  );
}

/**
 * Creates a namespace of its own for a test file and returns its name and a cleanup that deletes it.
 * Tests isolate by namespace on the shared control plane.
 */
export async function createTestNamespace(
  kc: KubeConfig,
  prefix: string,
): Promise<{ name: string; remove: () => Promise<void> }> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'keyrotor.dev/test': 'true' } } } });
  return {
    name,
    remove: async () => {
      await core.deleteNamespace({ name }).catch((error: unknown) => {
        if (statusCode(error) !== 404) throw error;
      });
    },
  };
}

/**
 * Sends a request exactly as given, bypassing the client's typed serializer: for bodies the typed
 * client would reshape before the API server could judge them.
 */
export async function rawRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined) throw new Error('kubeconfig has no current cluster');
  const url = new URL(path, server);
  const options: https.RequestOptions = {
    method,
    hostname: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
  };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const request = https.request(options, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body: text });
      });
    });
    request.on('error', reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** A Deployment (it never runs: there is no kubelet), for restart and admission tests. */
export async function createDeployment(
  kc: KubeConfig,
  namespace: string,
  name: string,
  podSpec: V1PodSpec = { containers: [{ name, image: `${name}:1` }] },
) {
  return kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: podSpec },
      },
    },
  });
}

export interface WriteFreeze {
  /** Binds the policy: from now on (within moments: wait on a probe) matching writes are refused. */
  bind(): Promise<void>;
  /** Unbinds it; writes are accepted again. */
  unbind(): Promise<void>;
  /** Removes the policy and its binding. */
  remove(): Promise<void>;
}

/**
 * A ValidatingAdmissionPolicy that refuses the writes `resourceRule` matches unless `allowed` (CEL
 * over `request`) holds: how tests make the real API server refuse a write, as a policy or quota would.
 */
export async function writeFreeze(
  kc: KubeConfig,
  name: string,
  resourceRule: V1NamedRuleWithOperations,
  allowed: string,
  message: string,
): Promise<WriteFreeze> {
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  await admission.createValidatingAdmissionPolicy({
    body: {
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [resourceRule] },
        validations: [{ expression: allowed, message }],
      },
    },
  });
  const unbind = async () => {
    await admission.deleteValidatingAdmissionPolicyBinding({ name }).catch(() => undefined);
  };
  return {
    bind: async () => {
      await admission.createValidatingAdmissionPolicyBinding({
        body: { metadata: { name }, spec: { policyName: name, validationActions: ['Deny'] } },
      });
    },
    unbind,
    remove: async () => {
      await unbind();
      await admission.deleteValidatingAdmissionPolicy({ name }).catch(() => undefined);
    },
  };
}
