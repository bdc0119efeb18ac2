// keyrotor's permissions come from its code: every API call the operator can make is a row of
// operator/src/kube/permissions.ts, and every row is needed by a call (or says what else asks for it).
// test/integration/helm.test.ts then checks the chart grants exactly these rows.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { PERMISSIONS, grantTuples } from '../../operator/src/kube/permissions.ts';
import { scanOperator, type ApiCall } from './rbac-scanner.ts';

const root = path.resolve(import.meta.dirname, '../..');
const key = (group: string, resource: string, verb: string) => `${group}|${resource}|${verb}`;
const where = (call: ApiCall) => `${call.file}:${call.line} ${call.method}`;

describe('the RBAC table and the code', () => {
  const scan = scanOperator(path.join(root, 'operator/src/main.ts'), root);
  const granted = new Set(
    PERMISSIONS.flatMap((row) =>
      [...row.verbs, ...(row.implied ?? [])].map((verb) => key(row.group, row.resource, verb)),
    ),
  );

  it("scans the operator's runtime files, not the CLI or keyrotor/verify's consumers", () => {
    expect(scan.files).toEqual(
      expect.arrayContaining([
        'operator/src/controller/controller.ts',
        'operator/src/kube/writes.ts',
        'operator/src/kube/seal-key.ts',
        'operator/src/kube/leader-election.ts',
        'operator/src/kube/metrics-auth.ts',
      ]),
    );
    expect(scan.files).not.toContain('operator/src/keyrotor.ts');
    expect(scan.calls.length).toBeGreaterThan(20);
  });

  it('maps every call it finds (no raw request, watch or unknown client left unread)', () => {
    expect(scan.unresolved).toEqual([]);
  });

  it('has a row for every call the code makes', () => {
    const missing = scan.calls
      .filter((call) => !granted.has(key(call.group, call.resource, call.verb)))
      .map((call) => `${where(call)} needs ${call.verb} on ${call.group || 'core'}/${call.resource}`);
    expect(missing).toEqual([]);
  });

  it('has no row that no call needs (implied verbs excepted, each with its reason)', () => {
    const called = new Set(scan.calls.map((call) => key(call.group, call.resource, call.verb)));
    const unused = PERMISSIONS.flatMap((row) =>
      row.verbs
        .filter((verb) => !called.has(key(row.group, row.resource, verb)))
        .map((verb) => `${verb} on ${row.group || 'core'}/${row.resource} (${row.why})`),
    );
    expect(unused).toEqual([]);
    for (const row of PERMISSIONS) {
      expect(row.why.length, `${row.resource}: why`).toBeGreaterThan(10);
      if (row.implied !== undefined) expect(row.implied.length).toBeGreaterThan(0);
    }
  });

  it('limits by name only verbs that can be limited (never create, list or watch)', () => {
    for (const row of PERMISSIONS.filter((candidate) => candidate.resourceNames !== undefined))
      expect(row.verbs.filter((verb) => ['create', 'list', 'watch'].includes(verb))).toEqual([]);
  });

  it('grants Secrets, workloads and namespace writes only where keyrotor manages keys', () => {
    const tuples = [
      ...grantTuples({
        releaseNamespace: 'keyrotor-system',
        fullname: 'kr',
        watchNamespaces: ['a', 'b'],
        readers: true,
        workloadRestarts: true,
        leaderElection: true,
      }),
    ];
    const secrets = tuples.filter((tuple) => tuple.includes('|secrets|')).map((t) => t.split('|')[0]);
    expect(new Set(secrets)).toEqual(new Set(['a', 'b', 'keyrotor-system']));
    expect(tuples).toContain('cluster||namespaces|patch|a');
    expect(tuples.filter((tuple) => tuple.startsWith('cluster|') && tuple.includes('|patch|'))).toEqual([
      'cluster||namespaces|patch|a',
      'cluster||namespaces|patch|b',
    ]);
    expect(tuples).toContain('keyrotor-system|coordination.k8s.io|leases|update|kr');
  });
});

describe('the scanner', () => {
  it('finds a new call, its verb and resource, and the watch of an informer, so the test above can fail', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rbac-scan-'));
    await writeFile(path.join(dir, 'main.ts'), "import { more } from './more.ts';\nmore();\n");
    await writeFile(
      path.join(dir, 'more.ts'),
      [
        "import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';",
        "import type { Nothing } from './never-read.ts';",
        'declare const core: CoreV1Api; declare const apps: AppsV1Api; declare const custom: CustomObjectsApi;',
        "const target = { group: 'keyrotor.dev', version: 'v1alpha1', plural: 'widgets' };",
        'export function more() {',
        "  void core.patchNamespacedConfigMap({ name: 'x', namespace: 'y', body: {} });",
        "  void apps.replaceNamespacedDeploymentScale({ name: 'x', namespace: 'y', body: {} });",
        "  void custom.deleteNamespacedCustomObject({ ...target, namespace: 'y', name: 'x' });",
        "  new ResilientInformer({ path: '/api/v1/pods', list: () => core.listPodForAllNamespaces() });",
        "  new ResilientInformer({ ...customObjectSource(custom, { group: 'argoproj.io', version: 'v1', plural: 'gadgets' }, undefined) });",
        "  void customObjectSource(custom, { group: 'keyrotor.dev', version: 'v1alpha1', plural: 'widgets' }, undefined);",
        "  void fetch('https://example.invalid/api/v1/secrets');",
        '}',
      ].join('\n'),
    );
    const scan = scanOperator(path.join(dir, 'main.ts'), dir);
    expect(scan.files).toEqual(['main.ts', 'more.ts']);
    expect(scan.calls.map((call) => `${call.group}|${call.resource}|${call.verb}`)).toEqual([
      '|configmaps|patch',
      'apps|deployments/scale|update',
      'keyrotor.dev|widgets|delete',
      '|pods|list',
      '|pods|watch',
      // kube/informer-sources.ts: an informer made with the helper lists and watches its resource.
      'argoproj.io|gadgets|list',
      'argoproj.io|gadgets|watch',
      'keyrotor.dev|widgets|list',
      'keyrotor.dev|widgets|watch',
    ]);
    expect(scan.unresolved).toEqual([
      'more.ts:11 customObjectSource: not inside an informer',
      'more.ts:12 fetch: a raw request',
    ]);
  });
});
