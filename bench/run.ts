// npm run bench -- [--scenario all|NAME,...] [--keys N] [--results file]; NAME is one of SCENARIOS.
// Runs the scenarios on a fresh local control plane (its audit log on, every request: bench/audit.ts),
// prints the results as JSON and appends them to bench/RESULTS.md with the machine and commit. A floor
// is always measured beside its converge, at the same client limit, and their ratio is in the floor row.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { KubeConfig } from '@kubernetes/client-node';

import { controlPlaneBinaries } from '../test/cluster/binaries.ts';
import { startControlPlane } from '../test/cluster/control-plane.ts';
import { AuditLog, operatorKubeconfig } from './audit.ts';
import { fairness } from './fairness.ts';
import { floor } from './floor.ts';
import { appendResults, commit, machine, repoRoot } from './harness.ts';
import { DEFAULT_LIMIT, LIFTED_LIMIT, type Context, type Limit, type Result } from './measure.ts';
import { converge, latency, restart, steady, unrelated } from './scenarios.ts';
import { secretFlood } from './secret-flood.ts';
import { storm } from './storm.ts';

const SCENARIOS = [
  'floor',
  'converge',
  'floor-unlimited',
  'converge-unlimited',
  'steady',
  'restart',
  'storm',
  'verifier-storm',
  'unrelated',
  'latency',
  'fairness',
  'secret-flood',
] as const;
const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'all' },
    keys: { type: 'string', default: '2000' },
    results: { type: 'string', default: path.join(repoRoot, 'bench/RESULTS.md') },
  },
});
const keys = Number(values.keys);
if (!Number.isInteger(keys) || keys < 1)
  throw new Error(`--keys must be a positive whole number, not ${values.keys}`);
const wanted = values.scenario === 'all' ? [...SCENARIOS] : values.scenario.split(',');
for (const name of wanted) {
  if (!(SCENARIOS as readonly string[]).includes(name))
    throw new Error(`unknown scenario ${name}; known: all, ${SCENARIOS.join(', ')}`);
}
const camel = (name: string) => name.replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase());
const wants = (name: (typeof SCENARIOS)[number]) => wanted.includes(name);

const log = (message: string) => {
  process.stderr.write(`[bench] ${message}\n`);
};
const runDir = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-cp-'));
// Outside runDir, which the control plane deletes when it stops.
const scratch = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-bench-'));
const auditFile = path.join(scratch, 'audit.log');
const controlPlane = await startControlPlane({
  binDir: await controlPlaneBinaries(),
  runDir,
  crdDir: path.join(repoRoot, 'crds'),
  detached: false,
  auditLogFile: auditFile,
  auditAllRequests: true,
  log,
});
const results: Record<string, Result> = {};
try {
  const kc = new KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfig);
  const ctx: Context = {
    kc,
    kubeconfig: controlPlane.kubeconfig,
    operatorKubeconfig: await operatorKubeconfig(kc, path.join(scratch, 'operator.kubeconfig')),
    audit: new AuditLog(auditFile),
    keys,
    log,
  };
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    log(`${name}: running with ${keys} keys`);
    const outcome = await run();
    // Each result as it comes, so a long run that is cut short still tells what it measured.
    const result = (outcome as { result?: unknown }).result ?? outcome;
    log(`${name}: ${JSON.stringify(result)}`);
    return outcome;
  };

  // The floor first, then the operator: the one measured second works over N more objects in etcd,
  // so this order cannot flatter the operator.
  const pair = async (suffix: string, limit: Limit, keep: boolean) => {
    const floorName = `floor${suffix}`;
    const convergeName = `converge${suffix}`;
    const floored = await step(floorName, () => floor(ctx, floorName, limit));
    const { result, operator } = await step(convergeName, () => converge(ctx, convergeName, limit));
    floored.operatorOverFloor = Number(
      ((result.wallSeconds as number) / (floored.wallSeconds as number)).toFixed(2),
    );
    log(`${convergeName} / ${floorName}: ${String(floored.operatorOverFloor)}`);
    results[camel(floorName)] = floored;
    results[camel(convergeName)] = result;
    if (!keep) await operator.stop();
    return operator;
  };
  if (['floor', 'converge', 'steady', 'restart'].some((name) => wanted.includes(name))) {
    let current = await pair('', DEFAULT_LIMIT, true);
    if (wants('steady')) results.steady = await step('steady', () => steady(ctx, current));
    if (wants('restart')) {
      const restarted = await step('restart', () => restart(ctx, 'converge', current, DEFAULT_LIMIT));
      results.restart = restarted.result;
      current = restarted.operator;
    }
    await current.stop();
  }
  if (wants('floor-unlimited') || wants('converge-unlimited')) await pair('-unlimited', LIFTED_LIMIT, false);
  if (wants('storm')) results.storm = await step('storm', () => storm(ctx, 'storm', DEFAULT_LIMIT));
  if (wants('verifier-storm')) {
    results.verifierStorm = await step('verifier-storm', () =>
      storm(ctx, 'verifier-storm', DEFAULT_LIMIT, { issuer: true }),
    );
  }
  if (wants('unrelated')) results.unrelated = await step('unrelated', () => unrelated(ctx, 'unrelated'));
  if (wants('latency')) results.latency = await step('latency', () => latency(ctx, 'latency'));
  if (wants('fairness')) results.fairness = await step('fairness', () => fairness(ctx, 'fairness'));
  if (wants('secret-flood'))
    results.secretFlood = await step('secret-flood', () => secretFlood(ctx, 'secret-flood'));
} finally {
  await controlPlane.stop();
  await rm(scratch, { recursive: true, force: true });
}

const run = { keys, commit: await commit(), machine: machine(), date: new Date().toISOString(), results };
process.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
await appendResults(values.results, `${keys} keys`, results);
