// What the scenarios measure with, all from outside the operator: the API server's audit log (every
// request, by client: bench/audit.ts), the operator process's CPU and memory from /proc, and its
// work queue, reconciles and event-loop lag from its /metrics.
import type { KubeConfig } from '@kubernetes/client-node';

import { DEFAULT_BURST, DEFAULT_QPS } from '../operator/src/controller/controller.ts';
import { startOperatorProcess, type OperatorProcess } from '../test/support/operator-process.ts';
import { waitFor } from '../test/support/wait.ts';
import { byClient, writesBy, type AuditLog, type AuditedRequest, type Client } from './audit.ts';

export interface Context {
  /** The harness's own client (the admin user). */
  readonly kc: KubeConfig;
  readonly kubeconfig: string;
  /** The operator's: its own ServiceAccount, so the audit log tells its requests apart. */
  readonly operatorKubeconfig: string;
  readonly audit: AuditLog;
  readonly keys: number;
  readonly log: (message: string) => void;
}

export type Result = Record<string, unknown>;

export const READY_TIMEOUT_MS = 30 * 60_000;
export const round = (value: number, digits = 2) => Number(value.toFixed(digits));

/** A client rate limit: the operator's --kube-api-qps/--kube-api-burst, and the floor's the same. */
export interface Limit {
  readonly qps: number;
  readonly burst: number;
}
export const DEFAULT_LIMIT: Limit = { qps: DEFAULT_QPS, burst: DEFAULT_BURST };
/** The highest the operator accepts: far above what two cores serve (about 300 requests/s). */
export const LIFTED_LIMIT: Limit = { qps: 10_000, burst: 10_000 };
export const limitFlags = (limit: Limit) => [
  '--kube-api-qps',
  String(limit.qps),
  '--kube-api-burst',
  String(limit.burst),
];

export async function startOperator(ctx: Context, namespace: string, extra: string[] = []) {
  return startOperatorProcess(ctx.operatorKubeconfig, [
    '--namespaces',
    namespace,
    '--log-level',
    'warn',
    ...extra,
  ]);
}

/** Values of the operator's own metrics (reconciles, queue depth, event-loop lag). */
export async function operatorMetric(operator: OperatorProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${operator.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => pattern.test(line))
    .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
export const verifierWrites = (operator: OperatorProcess) =>
  operatorMetric(operator, /^keyrotor_verifier_writes_total /);
export const reconciles = (operator: OperatorProcess) =>
  operatorMetric(operator, /^keyrotor_reconcile_total\{/);
export const eventLoopLagP99Ms = async (operator: OperatorProcess) =>
  round((await operatorMetric(operator, /^keyrotor_nodejs_eventloop_lag_p99_seconds /)) * 1000);

/**
 * Nothing queued and no request of the operator's clients still out: each one sent was answered or
 * failed (its deadline, a reset connection). A request still waiting for the rate limit is not sent
 * yet: convergeWritten waits for the Events besides. Not for an operator with leader election, whose
 * Lease requests have no response hook.
 */
export async function idle(operator: OperatorProcess): Promise<boolean> {
  const depth = await operatorMetric(operator, /^keyrotor_workqueue_depth /);
  const sent = await operatorMetric(operator, /^keyrotor_api_requests_total\{/);
  const answered = await operatorMetric(operator, /^keyrotor_api_responses_total\{/);
  const failed = await operatorMetric(operator, /^keyrotor_api_failures_total\{/);
  return depth === 0 && sent === answered + failed;
}

/** Waits until the operator has reconciled `count` more times than `since` and is idle. */
export async function settled(operator: OperatorProcess, since: number, count: number): Promise<void> {
  await waitFor(
    async () => ((await reconciles(operator)) >= since + count && (await idle(operator)) ? true : undefined),
    { description: `${count} reconciles and an idle operator`, timeoutMs: READY_TIMEOUT_MS, intervalMs: 200 },
  );
}

/**
 * Waits until a converge's writes are done: the operator idle and, as its Events are sent after the
 * reconcile (and may wait for the rate limit), one Event per key in the audit log. An Event the operator
 * dropped (it may: they are best effort) is logged after a minute, not waited for.
 */
export async function convergeWritten(ctx: Context, operator: OperatorProcess, mark: number) {
  await waitFor(async () => ((await idle(operator)) ? true : undefined), {
    description: 'an idle operator',
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: 200,
  });
  const events = async () =>
    (await ctx.audit.since(mark)).filter(
      (request) => request.client === 'operator' && request.verb === 'CREATE' && request.what === 'events',
    ).length;
  await waitFor(async () => ((await events()) >= ctx.keys && (await idle(operator)) ? true : undefined), {
    description: `${ctx.keys} Events`,
    timeoutMs: 60_000,
    intervalMs: 200,
  }).catch(async () => {
    ctx.log(`the operator sent ${await events()} Events for ${ctx.keys} keys`);
  });
}

/**
 * The converge interval, the same for the operator and the floor, by the API server's clock: from the
 * first ApiKey creation received to the last write of `worker` done.
 */
export function convergeSeconds(requests: readonly AuditedRequest[], worker: Client): number {
  const creations = requests.filter(
    (request) => request.client === 'harness' && request.verb === 'CREATE' && request.what === 'apikeys',
  );
  const writes = requests.filter((request) => request.client === worker && request.write);
  // A loop, not Math.min(...): tens of thousands of arguments can overflow the stack.
  const start = creations.reduce((first, request) => Math.min(first, request.receivedAt), Infinity);
  const end = writes.reduce((last, request) => Math.max(last, request.finishedAt), -Infinity);
  return round((end - start) / 1000, 3);
}

/** Every request in the window by client, and the operator's writes to any resource. */
export function counted(requests: readonly AuditedRequest[]) {
  return {
    requests: byClient(requests),
    writes: writesBy(requests, 'operator'),
    harnessWrites: writesBy(requests, 'harness'),
  };
}

export interface Probe {
  readonly mark: number;
  readonly cpu: number;
  readonly at: number;
  /** How many log lines the operator had written. */
  readonly lines: number;
}
export async function probe(ctx: Context, operator: OperatorProcess): Promise<Probe> {
  return {
    mark: await ctx.audit.mark(),
    cpu: await operator.cpuSeconds(),
    at: performance.now(),
    lines: operator.lines.length,
  };
}

/** The operator logs its levels by name (observability/logger.ts); pino's numbers are taken too. */
const PROBLEM_LEVELS = new Set<unknown>(['warn', 'error', 'fatal', 40, 50, 60]);
/**
 * The operator's warnings and errors since a probe, counted by message, call and reason (its log
 * lines carry no key material: test/security/key-leaks.test.ts), so a run's failures are on record.
 */
export function problems(lines: readonly Record<string, unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    if (!PROBLEM_LEVELS.has(line.level)) continue;
    const error = (typeof line.error === 'object' && line.error !== null ? line.error : {}) as Record<
      string,
      unknown
    >;
    const what = [line.msg, error.call, error.status, error.reason].filter(
      (part): part is string | number => typeof part === 'string' || typeof part === 'number',
    );
    // Object names replaced, so that one failure over many keys is one entry.
    const name = what.map((part) => String(part).replace(/\S+\/\S+/g, '<namespace>/<name>')).join(' / ');
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}
export async function since(ctx: Context, operator: OperatorProcess, before: Probe) {
  const wallSeconds = round((performance.now() - before.at) / 1000, 3);
  return {
    wallSeconds,
    ...counted(await ctx.audit.since(before.mark)),
    operatorCpuSeconds: round((await operator.cpuSeconds()) - before.cpu),
    operatorPeakRssMiB: await operator.peakRssMiB(),
    eventLoopLagP99Ms: await eventLoopLagP99Ms(operator),
    apiFailures: await operatorMetric(operator, /^keyrotor_api_failures_total\{/),
    problems: problems(operator.lines.slice(before.lines)),
  };
}
