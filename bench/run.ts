// npm run bench -- [--scenario converge] [--keys N]: runs a benchmark on a fresh local control plane,
// prints its result as JSON and appends a row to bench/RESULTS.md.
import { appendFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { KubeConfig } from '@kubernetes/client-node';

import { controlPlaneBinaries } from '../test/cluster/binaries.ts';
import { startControlPlane } from '../test/cluster/control-plane.ts';
import { waitFor } from '../test/support/wait.ts';
import {
  apiserverRequests,
  createApiKeys,
  createNamespace,
  difference,
  machine,
  commit,
  percentile,
  repoRoot,
  startOperatorProcess,
  watchReady,
} from './harness.ts';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'converge' },
    keys: { type: 'string', default: '500' },
    results: { type: 'string', default: path.join(repoRoot, 'bench/RESULTS.md') },
  },
});
const keys = Number(values.keys);
if (!Number.isInteger(keys) || keys < 1)
  throw new Error(`--keys must be a positive whole number, not ${values.keys}`);
if (values.scenario !== 'converge') throw new Error(`unknown scenario ${values.scenario}; known: converge`);

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
try {
  const kc = new KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfig);
  const namespace = 'bench';
  await createNamespace(kc, namespace);
  const operator = await startOperatorProcess(controlPlane.kubeconfig, [
    '--namespaces',
    namespace,
    '--log-level',
    'info',
  ]);
  const ready = await watchReady(kc, namespace);
  const requestsBefore = await apiserverRequests(kc);
  const cpuBefore = await operator.cpuSeconds();

  const started = performance.now();
  const createdAt = await createApiKeys(kc, namespace, keys);
  await waitFor(() => (ready.readyAt.size >= keys ? true : undefined), {
    description: `${keys} ApiKeys to be Ready`,
    timeoutMs: 600_000,
    intervalMs: 50,
  });
  const wallSeconds = (Math.max(...ready.readyAt.values()) - started) / 1000;
  const latencies = [...createdAt].map(([name, at]) => (ready.readyAt.get(name) ?? Number.NaN) - at);
  ready.stop();
  const result = {
    scenario: 'converge',
    keys,
    wallSeconds: Number(wallSeconds.toFixed(3)),
    keysPerSecond: Number((keys / wallSeconds).toFixed(1)),
    createToReadyMs: {
      p50: Math.round(percentile(latencies, 50)),
      p99: Math.round(percentile(latencies, 99)),
    },
    apiserverRequests: difference(await apiserverRequests(kc), requestsBefore),
    operatorCpuSeconds: Number(((await operator.cpuSeconds()) - cpuBefore).toFixed(2)),
    operatorPeakRssMiB: await operator.peakRssMiB(),
    machine: machine(),
    date: new Date().toISOString(),
  };
  await operator.stop();
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const row =
    `| ${result.date.slice(0, 10)} | ${await commit()} | converge | ${keys} | ${result.wallSeconds} | ${result.keysPerSecond} | ` +
    `${result.createToReadyMs.p50} / ${result.createToReadyMs.p99} | ${JSON.stringify(result.apiserverRequests)} | ` +
    `${result.operatorCpuSeconds} | ${result.operatorPeakRssMiB} | ${result.machine} |\n`;
  await appendFile(values.results, row);
} finally {
  await controlPlane.stop();
}
