// Least privilege by default, as the chart renders it: the RBAC bound to keyrotor's ServiceAccount is
// exactly operator/src/kube/permissions.ts (which test/unit/rbac.test.ts ties to the code) for every
// combination of switches, workloads are not writable unless asked for, egress is the API server and
// DNS only, and /metrics scrapers authenticate.
import path from 'node:path';

import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';

import { grantTuples, type GrantValues } from '../../operator/src/kube/permissions.ts';
import { tool } from '../support/tools.ts';

const chart = path.resolve(import.meta.dirname, '../../charts/keyrotor');
const RELEASE_NAMESPACE = 'keyrotor-system';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
interface RenderedObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  spec?: Record<string, unknown>;
}

async function render(flags: string[]): Promise<RenderedObject[]> {
  const rendered = await tool('helm', ['template', 'kr', chart, '--namespace', RELEASE_NAMESPACE, ...flags]);
  expect(rendered.stderr).toBe('');
  expect(rendered.code).toBe(0);
  return (loadAll(rendered.stdout) as (RenderedObject | null)[]).filter(
    (object): object is RenderedObject => object !== null,
  );
}

const ruleTuples = (where: string, rule: Rule): string[] =>
  (rule.apiGroups ?? []).flatMap((group) =>
    (rule.resources ?? []).flatMap((resource) =>
      rule.verbs.flatMap((verb) =>
        (rule.resourceNames ?? ['*']).map((name) => [where, group, resource, verb, name].join('|')),
      ),
    ),
  );

/** What the chart grants keyrotor's ServiceAccount, as "where|group|resource|verb|name" tuples. */
function boundTuples(objects: RenderedObject[]): Set<string> {
  const tuples = new Set<string>();
  const bindings = objects.filter(
    (object) =>
      (object.kind === 'RoleBinding' || object.kind === 'ClusterRoleBinding') &&
      object.subjects?.some(
        (subject) =>
          subject.kind === 'ServiceAccount' &&
          subject.name === 'kr-keyrotor' &&
          subject.namespace === RELEASE_NAMESPACE,
      ) === true,
  );
  for (const binding of bindings) {
    const where = binding.kind === 'ClusterRoleBinding' ? 'cluster' : (binding.metadata.namespace ?? '?');
    const role = objects.find(
      (object) =>
        object.kind === binding.roleRef?.kind &&
        object.metadata.name === binding.roleRef.name &&
        (object.kind === 'ClusterRole' || object.metadata.namespace === binding.metadata.namespace),
    );
    expect(role, `${binding.kind} ${binding.metadata.name} binds a role the chart renders`).toBeDefined();
    for (const rule of role?.rules ?? []) {
      expect(rule.nonResourceURLs, 'keyrotor itself needs no nonResourceURL').toBeUndefined();
      for (const tuple of ruleTuples(where, rule)) tuples.add(tuple);
    }
  }
  return tuples;
}

const DEFAULTS: GrantValues = {
  releaseNamespace: RELEASE_NAMESPACE,
  fullname: 'kr-keyrotor',
  watchNamespaces: [],
  readers: true,
  workloadRestarts: false,
  leaderElection: true,
};

describe("the chart's least privilege", () => {
  it.each<[string, string[], Partial<GrantValues>]>([
    ['the defaults', [], {}],
    [
      'namespaced mode',
      ['--set', 'watchNamespaces={team-a,team-b}'],
      { watchNamespaces: ['team-a', 'team-b'] },
    ],
    ['workload restarts on', ['--set', 'features.workloadRestarts=true'], { workloadRestarts: true }],
    [
      'namespaced, restarts on, readers and leader election off',
      [
        '--set',
        'watchNamespaces={team-a}',
        '--set',
        'features.workloadRestarts=true',
        '--set',
        'features.readers=false',
        '--set',
        'leaderElection.enabled=false',
        '--set',
        'replicaCount=1',
      ],
      { watchNamespaces: ['team-a'], workloadRestarts: true, readers: false, leaderElection: false },
    ],
  ])(
    'grants exactly the permissions table with %s: nothing missing, nothing extra',
    async (_name, flags, values) => {
      const granted = boundTuples(await render(flags));
      const expected = grantTuples({ ...DEFAULTS, ...values });
      expect({
        missing: [...expected].filter((tuple) => !granted.has(tuple)).sort(),
        extra: [...granted].filter((tuple) => !expected.has(tuple)).sort(),
      }).toEqual({ missing: [], extra: [] });
    },
  );

  it('lets keyrotor see or patch no workload unless features.workloadRestarts=true', async () => {
    const workloadGroups = new Set(['apps', 'argoproj.io']);
    const byDefault = [...boundTuples(await render([]))];
    expect(byDefault.filter((tuple) => workloadGroups.has(tuple.split('|')[1] ?? ''))).toEqual([]);
    const on = [...boundTuples(await render(['--set', 'features.workloadRestarts=true']))];
    expect(on.filter((tuple) => workloadGroups.has(tuple.split('|')[1] ?? '')).sort()).toEqual(
      ['apps|daemonsets', 'apps|deployments', 'apps|statefulsets', 'argoproj.io|rollouts'].flatMap(
        (resource) => ['list', 'patch', 'watch'].map((verb) => `cluster|${resource}|${verb}|*`),
      ),
    );
  });

  it('runs keyrotor without its workloads controller unless features.workloadRestarts=true', async () => {
    const args = async (flags: string[]) => {
      const deployment = (await render(flags)).find((object) => object.kind === 'Deployment');
      const spec = deployment?.spec as { template: { spec: { containers: { args: string[] }[] } } };
      return spec.template.spec.containers[0]?.args ?? [];
    };
    expect(await args([])).toContain('--no-manage-workloads');
    expect(await args(['--set', 'features.workloadRestarts=true'])).not.toContain('--no-manage-workloads');
  });

  it('ships a metrics-reader ClusterRole for scrapers, bound to nobody', async () => {
    const objects = await render([]);
    const reader = objects.find((object) => object.metadata.name === 'kr-keyrotor-metrics-reader');
    expect(reader).toMatchObject({
      kind: 'ClusterRole',
      rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }],
    });
    expect(objects.filter((object) => object.roleRef?.name === 'kr-keyrotor-metrics-reader')).toEqual([]);
  });

  it('has a NetworkPolicy by default: in, only the metrics and health port; out, only the API server and DNS', async () => {
    const policies = (await render([])).filter((object) => object.kind === 'NetworkPolicy');
    expect(policies).toHaveLength(1);
    expect(policies[0]?.spec).toEqual({
      podSelector: {
        matchLabels: { 'app.kubernetes.io/name': 'keyrotor', 'app.kubernetes.io/instance': 'kr' },
      },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: [{ port: 'http', protocol: 'TCP' }] }],
      egress: [
        {
          ports: [
            { port: 443, protocol: 'TCP' },
            { port: 6443, protocol: 'TCP' },
          ],
        },
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'TCP' },
          ],
        },
      ],
    });
    const off = await render(['--set', 'networkPolicy.enabled=false']);
    expect(off.filter((object) => object.kind === 'NetworkPolicy')).toEqual([]);
  });

  it("scrapes with the Prometheus ServiceAccount's token", async () => {
    const monitor = (await render(['--set', 'metrics.serviceMonitor.enabled=true'])).find(
      (object) => object.kind === 'ServiceMonitor',
    );
    expect(monitor?.spec?.endpoints).toEqual([
      expect.objectContaining({
        path: '/metrics',
        bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      }),
    ]);
  });
});
