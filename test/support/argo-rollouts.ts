// Argo Rollouts' real Rollout CRD, fetched from the pinned module (test/cluster/argo-rollouts-crd.sh,
// cached beside the control plane; build.sh fetches it too) and installed into the shared control plane.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { ApiextensionsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { load } from 'js-yaml';

import { rawRequest, statusCode, waitForNotFound } from './kube.ts';
import { waitFor } from './wait.ts';

export const ROLLOUT_CRD_NAME = 'rollouts.argoproj.io';
const script = path.join(import.meta.dirname, '../cluster/argo-rollouts-crd.sh');

/** The cached CRD's path (fetched first if the cache lacks it). */
async function crdPath(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [script], (error, stdout, stderr) => {
      const last = stdout.trim().split('\n').at(-1);
      if (error === null && last) resolve(last);
      else reject(new Error(`${script} failed: ${stderr.trim().split('\n').at(-1) ?? 'no output'}`));
    });
  });
}

/** Installs the Rollout CRD and waits until it is Established (served). */
export async function installRolloutCrd(kc: KubeConfig): Promise<void> {
  const crd: unknown = load(await readFile(await crdPath(), 'utf8'));
  // As given: the typed client's model drops x-kubernetes-int-or-string, and the API server refuses the rest.
  const created = await rawRequest(
    kc,
    'POST',
    '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    crd,
  );
  if (created.status !== 201 && created.status !== 409)
    throw new Error(
      `creating the ${ROLLOUT_CRD_NAME} CRD: HTTP ${created.status} ${created.body.slice(0, 500)}`,
    );
  const api = kc.makeApiClient(ApiextensionsV1Api);
  await waitFor(
    async () => {
      const current = await api.readCustomResourceDefinition({ name: ROLLOUT_CRD_NAME });
      const established = current.status?.conditions?.find((condition) => condition.type === 'Established');
      return established?.status === 'True' ? true : undefined;
    },
    { description: `the ${ROLLOUT_CRD_NAME} CRD to be established` },
  );
}

/** Removes the Rollout CRD (and so every Rollout) and waits until it is gone. */
export async function removeRolloutCrd(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  await api.deleteCustomResourceDefinition({ name: ROLLOUT_CRD_NAME }).catch((error: unknown) => {
    if (statusCode(error) !== 404) throw error;
  });
  await waitForNotFound(
    () => api.readCustomResourceDefinition({ name: ROLLOUT_CRD_NAME }),
    `the ${ROLLOUT_CRD_NAME} CRD to be removed`,
  );
}
