import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import type { TestProject } from 'vitest/node';

import { controlPlaneBinaries } from './binaries.ts';
import { startControlPlane, sweepOrphans } from './control-plane.ts';

const RUN_PREFIX = 'keyrotor-cp-';
const repoRoot = path.resolve(import.meta.dirname, '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the run's control plane. */
    kubeconfig: string;
    /** Folder with the control plane's binaries, kubectl among them. */
    controlPlaneBin: string;
  }
}

/** One control plane per test run, started before any test worker and stopped after the last. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (message: string) => {
    console.error(`[control-plane] ${message}`);
  };
  await sweepOrphans(os.tmpdir(), RUN_PREFIX);
  const binDir = await controlPlaneBinaries();
  const runDir = await mkdtemp(path.join(os.tmpdir(), RUN_PREFIX));
  const started = Date.now();
  const controlPlane = await startControlPlane({
    binDir,
    runDir,
    crdDir: path.join(repoRoot, 'crds'),
    detached: false,
    log,
  });
  log(`started in ${Date.now() - started} ms`);
  project.provide('kubeconfig', controlPlane.kubeconfig);
  project.provide('controlPlaneBin', binDir);
  return async () => {
    const { peakRssMiB } = await controlPlane.stop();
    log(`stopped; peak RSS MiB: ${JSON.stringify(peakRssMiB)}`);
  };
}
