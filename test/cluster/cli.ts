// npm run cluster:up / cluster:down: the test control plane, left running for kubectl and local work.
import { existsSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import path from 'node:path';

import { controlPlaneBinaries } from './binaries.ts';
import { startControlPlane, stopRecorded } from './control-plane.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const runDir = path.join(repoRoot, '.cluster');

async function up(): Promise<void> {
  if (existsSync(path.join(runDir, 'control-plane.json'))) await stopRecorded(runDir);
  const binDir = await controlPlaneBinaries();
  const controlPlane = await startControlPlane({
    binDir,
    runDir,
    crdDir: path.join(repoRoot, 'crds'),
    detached: true,
    log: (message) => {
      console.error(`[control-plane] ${message}`);
    },
  });
  // A kubectl that matches the server, at a path that is easy to type.
  await symlink(controlPlane.kubectl, path.join(runDir, 'kubectl'));
  console.error(`try: .cluster/kubectl --kubeconfig ${controlPlane.kubeconfig} get namespaces`);
  console.error(`logs: ${path.join(runDir, 'logs')}; stop with: npm run cluster:down`);
  console.log(controlPlane.kubeconfig);
}

async function down(): Promise<void> {
  const report = await stopRecorded(runDir);
  console.error(
    report ? `stopped; peak RSS MiB: ${JSON.stringify(report.peakRssMiB)}` : 'no control plane was running',
  );
}

const command = process.argv[2];
if (command === 'up') await up();
else if (command === 'down') await down();
else {
  console.error('usage: cli.ts up|down');
  process.exitCode = 2;
}
