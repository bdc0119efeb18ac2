// Fault tests stop, stall and restart parts of the control plane, so each file starts one of its own
// (with the API server's audit log on) instead of sharing the run's.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

import { controlPlaneBinaries } from '../cluster/binaries.ts';
import { startControlPlane, type ControlPlane } from '../cluster/control-plane.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface FaultControlPlane {
  readonly controlPlane: ControlPlane;
  readonly kc: KubeConfig;
  readonly auditLog: string;
  /** The pid of a component (kube-apiserver, etcd, kube-controller-manager). */
  pidOf(name: string): number;
  createNamespace(name: string): Promise<void>;
}

export async function startFaultControlPlane(): Promise<FaultControlPlane> {
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-cp-'));
  const auditLog = path.join(runDir, 'audit.log');
  const controlPlane = await startControlPlane({
    binDir: await controlPlaneBinaries(),
    runDir,
    crdDir: path.join(repoRoot, 'crds'),
    detached: false,
    auditLogFile: auditLog,
    log: (message) => {
      console.error(`[control-plane] ${message}`);
    },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfig);
  return {
    controlPlane,
    kc,
    auditLog,
    pidOf: (name) => {
      const component = controlPlane.components.find((candidate) => candidate.name === name);
      if (component === undefined) throw new Error(`no ${name} in the control plane`);
      return component.pid;
    },
    createNamespace: async (name) => {
      // keyrotor-system is made with the control plane (keyrotor's own namespace: its seal key).
      await kc
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name } } })
        .catch((error: unknown) => {
          if (!(name === 'keyrotor-system' && (error as { code?: number }).code === 409)) throw error;
        });
    },
  };
}
