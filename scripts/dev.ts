// npm run dev: the local control plane, keyrotor's CRDs and the operator, in one process. Ctrl-C stops all.
import { execFile } from 'node:child_process';
import { mkdtemp, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { controlPlaneBinaries } from '../test/cluster/binaries.ts';
import { startControlPlane, sweepOrphans } from '../test/cluster/control-plane.ts';
import { Controller } from '../operator/src/controller/controller.ts';
import { loadKubeConfig } from '../operator/src/kube/client.ts';
import { createLogger } from '../operator/src/observability/logger.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
const execFileAsync = promisify(execFile);
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

const examples = path.join(repoRoot, 'examples');
// -R: the folders too (examples/market-data-api: an ApiKeyIssuer and a client's key). A local control
// plane has no nodes, so the example API's pods stay Pending; its verifier Secret is written all the same.
await execFileAsync(kubectl, ['--kubeconfig', controlPlane.kubeconfig, 'apply', '-R', '-f', examples]);
const k = `${kubectl} --kubeconfig ${controlPlane.kubeconfig}`;
const cli = `npm exec -- keyrotor --kubeconfig ${controlPlane.kubeconfig}`;
say(`keyrotor is running on a local control plane, with the keys of examples/ applied.
Kubeconfig: ${controlPlane.kubeconfig}
Try, in another terminal:
  ${k} get apikeys -o wide                 # Ready, Secret, Key ID, Expires, Next Rotation
  ${cli} status                            # the same, with each key's last event
  ${cli} rotate trading-bot                # rotate now; the old key stays for the grace period
  ${k} get secret trading-bot -o jsonpath='{.data}'    # the key lives only here
  ${cli} revoke market-data-test --reason "demo"
  ${cli} history trading-bot
  ${k} get events --field-selector involvedObject.name=trading-bot
  ${k} get apikeyissuers -A                 # the market-data API's issuer: verifier revision, keys
  ${k} get secret market-data-verifier -n market-data -o jsonpath='{.data.verifier\\.json}' | base64 -d
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
