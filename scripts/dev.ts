// npm run dev: the local control plane, keyrotor's CRDs and the operator, in one process. Ctrl-C stops all.
import { mkdtemp, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { controlPlaneBinaries } from '../test/cluster/binaries.ts';
import { startControlPlane, sweepOrphans } from '../test/cluster/control-plane.ts';
import { Controller } from '../operator/src/controller/controller.ts';
import { loadKubeConfig } from '../operator/src/kube/client.ts';
import { createLogger } from '../operator/src/observability/logger.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const say = (message: string) => {
  process.stderr.write(`[dev] ${message}\n`);
};

await sweepOrphans(os.tmpdir(), 'keyrotor-dev-');
const binDir = await controlPlaneBinaries();
const runDir = await mkdtemp(path.join(os.tmpdir(), 'keyrotor-dev-'));
const controlPlane = await startControlPlane({
  binDir,
  runDir,
  crdDir: path.join(repoRoot, 'crds'),
  detached: false,
  log: say,
});
const kubectl = path.join(runDir, 'kubectl');
await symlink(controlPlane.kubectl, kubectl);

const logger = createLogger({ level: (process.env.KEYROTOR_LOG_LEVEL as 'info' | undefined) ?? 'info' });
const controller = new Controller({
  kc: loadKubeConfig(controlPlane.kubeconfig),
  logger,
  namespaces: [],
  concurrency: 4,
  instance: 'dev',
});
await controller.start();

const k = `${kubectl} --kubeconfig ${controlPlane.kubeconfig}`;
say(`keyrotor is running on a local control plane. In another terminal:
  export KUBECONFIG=${controlPlane.kubeconfig}
  ${k} apply -f - <<'YAML'
  apiVersion: keyrotor.dev/v1alpha1
  kind: ApiKey
  metadata: {name: trading-bot, namespace: default}
  spec: {scopes: [prices:read, orders:write], expiresAfter: 30d}
  YAML
  ${k} get apikeys                        # Ready, Secret, Key ID, Expires, Next Rotation
  ${k} get secret trading-bot -o yaml     # the key lives only here
  ${k} get events --field-selector involvedObject.name=trading-bot
Audit lines are the JSON lines with "audit":true below. Ctrl-C stops everything.`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  say('stopping');
  await controller.stop();
  logger.flush();
  await controlPlane.stop();
  say('stopped');
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
