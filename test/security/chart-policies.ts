// The chart's admission policies, rendered and applied as Helm would, for the security tests. keyrotor's
// policies are cluster-wide singletons with fixed names (one release per cluster installs them), and
// other test files install some of them: here each is renamed with a suffix of the test's own, so
// test files never touch each other's policies. Nothing else of what the chart rendered is changed.
import path from 'node:path';

import { expect } from 'vitest';

import { tool } from '../support/tools.ts';

export const chart = path.resolve(import.meta.dirname, '../../charts/keyrotor');

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  [field: string]: unknown;
}

/** Every policy switch off: a test turns on the ones it is about. */
export const ALL_POLICIES_OFF = [
  'admissionPolicies.readers.enabled=false',
  'admissionPolicies.environments.enabled=false',
  'admissionPolicies.requireReaders.enabled=false',
  'admissionPolicies.selfRestraint.enabled=false',
  'admissionPolicies.replicators.enabled=false',
].flatMap((value) => ['--set', value]);

/** `helm template` of the chart: its objects, of the kinds given. */
export async function renderChart(
  release: string,
  namespace: string,
  flags: string[],
  kinds: readonly string[],
): Promise<KubeObject[]> {
  const rendered = await tool('helm', ['template', release, chart, '--namespace', namespace, ...flags]);
  expect(rendered.stderr).toBe('');
  expect(rendered.code).toBe(0);
  const { loadAll } = await import('js-yaml');
  return (loadAll(rendered.stdout) as (KubeObject | null)[]).filter(
    (object): object is KubeObject => object !== null && kinds.includes(object.kind),
  );
}

/** Renames the ValidatingAdmissionPolicies and their bindings: name -> name-suffix. */
export function renamePolicies(objects: KubeObject[], suffix: string): KubeObject[] {
  return objects.map((object) => {
    if (object.kind === 'ValidatingAdmissionPolicy')
      return { ...object, metadata: { ...object.metadata, name: `${object.metadata.name}-${suffix}` } };
    if (object.kind === 'ValidatingAdmissionPolicyBinding') {
      const spec = object.spec as { policyName: string };
      return {
        ...object,
        metadata: { ...object.metadata, name: `${object.metadata.name}-${suffix}` },
        spec: { ...spec, policyName: `${spec.policyName}-${suffix}` },
      };
    }
    return object;
  });
}

export function findObject(objects: KubeObject[], kind: string): KubeObject {
  const found = objects.find((object) => object.kind === kind);
  if (found === undefined) throw new Error(`the chart rendered no ${kind}`);
  return found;
}

/** kubectl apply (as the admin) of a list of objects. */
export async function applyObjects(objects: KubeObject[]): Promise<void> {
  const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
  const applied = await tool('kubectl', ['apply', '-f', '-'], list);
  expect(applied.stderr).toBe('');
  expect(applied.code).toBe(0);
}

export async function deleteObjects(objects: KubeObject[]): Promise<void> {
  const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
  await tool('kubectl', ['delete', '--ignore-not-found', '--wait=false', '-f', '-'], list);
}

/** The API server's words when a ValidatingAdmissionPolicy refuses a request. */
export function deniedBy(policy: string): string {
  return `ValidatingAdmissionPolicy '${policy}' with binding '${policy}' denied request`;
}

/** The message of a Status body (its JSON escapes <, > and &). */
export function messageOf(body: string): string {
  try {
    const { message } = JSON.parse(body) as { message?: unknown };
    return typeof message === 'string' ? message : body;
  } catch {
    return body;
  }
}
