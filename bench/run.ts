// npm run bench -- [--scenario all|converge|floor|steady|restart|storm|verifier-storm|unrelated|latency|fairness|secret-flood] [--keys N]
// Runs the scenarios on a fresh local control plane, prints the results as JSON and appends them to
// bench/RESULTS.md with the machine and commit.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { KubeConfig } from '@kubernetes/client-node';

import { DEFAULT_BURST, DEFAULT_QPS } from '../operator/src/controller/controller.ts';
import { controlPlaneBinaries } from '../test/cluster/binaries.ts';
import { startControlPlane } from '../test/cluster/control-plane.ts';
import { fairness } from './fairness.ts';
import { appendResults, commit, machine, repoRoot } from './harness.ts';
import { secretFlood } from './secret-flood.ts';
import {
  converge,
  floor,
  latency,
  restart,
  steady,
  storm,
  unrelated,
  type Context,
  type Result,
} from './scenarios.ts';

const SCENARIOS = [
  'converge',
  'floor',
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
const wants = (name: (typeof SCENARIOS)[number]) => wanted.includes(name);

const log = (message: string) => {
  process.stderr.write(`[bench] ${message}\n`);
};
const controlPlane = await startControlPlane({
  binDir: await controlPlaneBinaries(),
  runDir: await mkdtemp(path.join(os.tmpdir(), 'keyrotor-cp-')),
  crdDir: path.join(repoRoot, 'crds'),
  detached: false,
  log,
});
const results: Record<string, Result> = {};
try {
  const kc = new KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfig);
  const ctx: Context = { kc, kubeconfig: controlPlane.kubeconfig, keys, log };
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    log(`${name}: running with ${keys} keys`);
    const outcome = await run();
    // Each result as it comes, so a long run that is cut short still tells what it measured.
    const result = (outcome as { result?: unknown }).result ?? outcome;
    log(`${name}: ${JSON.stringify(result)}`);
    return outcome;
  };

  if (wants('converge') || wants('steady') || wants('restart')) {
    const { result, operator } = await step('converge', () => converge(ctx, 'converge'));
    results.converge = result;
    let current = operator;
    if (wants('steady')) results.steady = await step('steady', () => steady(ctx, current));
    if (wants('restart')) {
      const restarted = await step('restart', () => restart(ctx, 'converge', current));
      results.restart = restarted.result;
      current = restarted.operator;
    }
    await current.stop();
  }
  if (wants('floor')) {
    results.floor = await step('floor', () => floor(ctx, 'floor', DEFAULT_QPS, DEFAULT_BURST, 4));
    const operatorSeconds = results.converge?.wallSeconds;
    if (typeof operatorSeconds === 'number') {
      results.floor.operatorOverFloor = Number(
        (operatorSeconds / (results.floor.wallSeconds as number)).toFixed(2),
      );
    }
  }
  if (wants('storm')) results.storm = await step('storm', () => storm(ctx, 'storm', DEFAULT_QPS));
  if (wants('verifier-storm')) {
    results.verifierStorm = await step('verifier-storm', () =>
      storm(ctx, 'verifier-storm', DEFAULT_QPS, { issuer: true }),
    );
  }
  if (wants('unrelated')) results.unrelated = await step('unrelated', () => unrelated(ctx, 'unrelated'));
  if (wants('latency')) results.latency = await step('latency', () => latency(ctx, 'latency'));
  if (wants('fairness')) results.fairness = await step('fairness', () => fairness(ctx, 'fairness'));
  if (wants('secret-flood'))
    results.secretFlood = await step('secret-flood', () => secretFlood(ctx, 'secret-flood'));
} finally {
  await controlPlane.stop();
}

const run = { keys, commit: await commit(), machine: machine(), date: new Date().toISOString(), results };
process.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
await appendResults(values.results, `${keys} keys`, results);
