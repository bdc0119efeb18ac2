// Request counts from the API server's audit log, which sees every request of every client (the control
// plane's own components aside: test/cluster/control-plane.ts, auditAllRequests). apiserver_request_total
// has no client label, so each request is attributed here instead:
//   operator  the operator runs as its own ServiceAccount (operatorKubeconfig), whatever its User-Agent;
//   floor     the floor's bare client, by its User-Agent (FLOOR_AGENT);
//   harness   anything else the benchmark's admin user sends (creates, watches, patches of the scenarios).
import { open, writeFile } from 'node:fs/promises';

import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';

const OPERATOR_NAMESPACE = 'keyrotor-system';
const OPERATOR_ACCOUNT = 'keyrotor-bench-operator';
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_ACCOUNT}`;
export const HARNESS_AGENT = 'keyrotor-bench/harness';
export const FLOOR_AGENT = 'keyrotor-bench/floor';
const ADMIN_USER = 'keyrotor-admin';

export type Client = 'operator' | 'floor' | 'harness' | 'other';

export interface AuditedRequest {
  readonly client: Client;
  /** Upper case, as the API server's audit log has it: GET, LIST, WATCH, CREATE, PATCH, UPDATE, DELETE. */
  readonly verb: string;
  /** resource[/subresource], or the path of a non-resource request. */
  readonly what: string;
  readonly write: boolean;
  /** When the API server received the request and when it finished it (epoch ms, its clock). */
  readonly receivedAt: number;
  readonly finishedAt: number;
}

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  user?: { username?: string };
  userAgent?: string;
  requestURI?: string;
  objectRef?: { resource?: string; subresource?: string };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

const READS = new Set(['get', 'list', 'watch']);

function clientOf(event: AuditEvent): Client {
  if (event.user?.username === OPERATOR_USER) return 'operator';
  if (event.userAgent?.startsWith(FLOOR_AGENT) === true) return 'floor';
  return event.user?.username === ADMIN_USER ? 'harness' : 'other';
}

/**
 * The audit log, read as the API server appends to it. It writes in blocking mode, so a request's
 * event is in the file before its response reaches the client. Each request is counted once: a watch
 * when it starts (ResponseStarted; one that never started, when it ends), anything else when it ends.
 */
export class AuditLog {
  readonly #file: string;
  readonly #requests: AuditedRequest[] = [];
  readonly #watchesStarted = new Set<string>();
  #offset = 0;
  #partial = '';

  constructor(file: string) {
    this.#file = file;
  }

  /** A mark in the log: `since(mark)` returns the requests counted after it. */
  async mark(): Promise<number> {
    await this.#catchUp();
    return this.#requests.length;
  }

  async since(mark: number): Promise<readonly AuditedRequest[]> {
    await this.#catchUp();
    return this.#requests.slice(mark);
  }

  async #catchUp(): Promise<void> {
    const handle = await open(this.#file, 'r').catch(() => undefined);
    if (handle === undefined) return;
    try {
      const { size } = await handle.stat();
      // Shorter than what was read: rotated or truncated, and the counts would silently stop.
      if (size < this.#offset)
        throw new Error(
          `the audit log ${this.#file} shrank from ${this.#offset} to ${size} bytes (rotated?)`,
        );
      if (size === this.#offset) return;
      const buffer = Buffer.alloc(size - this.#offset);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.#offset);
      this.#offset += bytesRead;
      const lines = (this.#partial + buffer.subarray(0, bytesRead).toString('utf8')).split('\n');
      this.#partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') this.#add(JSON.parse(line) as AuditEvent);
    } finally {
      await handle.close();
    }
  }

  #add(event: AuditEvent): void {
    if (event.verb === 'watch') {
      if (event.stage === 'ResponseStarted') this.#watchesStarted.add(event.auditID);
      else if (this.#watchesStarted.delete(event.auditID)) return;
    } else if (event.stage !== 'ResponseComplete' && event.stage !== 'Panic') return;
    const resource = [event.objectRef?.resource, event.objectRef?.subresource].filter(Boolean).join('/');
    this.#requests.push({
      client: clientOf(event),
      verb: event.verb.toUpperCase(),
      what: resource || (event.requestURI ?? '').split('?')[0] || '?',
      write: !READS.has(event.verb),
      receivedAt: Date.parse(event.requestReceivedTimestamp),
      finishedAt: Date.parse(event.stageTimestamp),
    });
  }
}

/** Requests by client, then by "VERB what", e.g. { operator: { "PATCH secrets": 2000, ... }, harness: ... }. */
export function byClient(
  requests: readonly AuditedRequest[],
): Partial<Record<Client, Record<string, number>>> {
  const counts: Partial<Record<Client, Record<string, number>>> = {};
  for (const request of requests) {
    const client = (counts[request.client] ??= {});
    const key = `${request.verb} ${request.what}`;
    client[key] = (client[key] ?? 0) + 1;
  }
  return counts;
}

export const writesBy = (requests: readonly AuditedRequest[], client: Client) =>
  requests.filter((request) => request.client === client && request.write).length;

/** The most requests `client` sent in any one second (by the API server's receipt times). */
export function peakPerSecond(requests: readonly AuditedRequest[], client: Client): number {
  const perSecond = new Map<number, number>();
  for (const request of requests) {
    if (request.client !== client) continue;
    const second = Math.floor(request.receivedAt / 1000);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  }
  return Math.max(0, ...perSecond.values());
}

/**
 * A kubeconfig for the operator as its own ServiceAccount (bound to cluster-admin, as the admin user it
 * replaces), so the audit log tells every request of the operator from the harness's.
 */
export async function operatorKubeconfig(kc: KubeConfig, file: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({
    namespace: OPERATOR_NAMESPACE,
    body: { metadata: { name: OPERATOR_ACCOUNT } },
  });
  await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: OPERATOR_ACCOUNT },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: OPERATOR_ACCOUNT, namespace: OPERATOR_NAMESPACE }],
    },
  });
  const request = await core.createNamespacedServiceAccountToken({
    namespace: OPERATOR_NAMESPACE,
    name: OPERATOR_ACCOUNT,
    body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
  });
  const token = request.status?.token;
  if (token === undefined) throw new Error('the API server returned no ServiceAccount token');
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the benchmark kubeconfig has no current cluster');
  const operator = new KubeConfig();
  operator.loadFromOptions({
    clusters: [cluster],
    users: [{ name: OPERATOR_ACCOUNT, token }],
    contexts: [{ name: OPERATOR_ACCOUNT, cluster: cluster.name, user: OPERATOR_ACCOUNT }],
    currentContext: OPERATOR_ACCOUNT,
  });
  await writeFile(file, operator.exportConfig(), { mode: 0o600 });
  return file;
}
