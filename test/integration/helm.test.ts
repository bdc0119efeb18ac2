// The Helm chart against the real API server: every rendered object validated by the server, a real
// install, and the operator run with nothing but the chart's ServiceAccount to prove its RBAC is
// enough, and no more than enough.
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { load, loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import {
  adminKubeConfig,
  createDeployment,
  createTestNamespace,
  failureStatus,
  tokenKubeConfig,
} from '../support/kube.ts';
import {
  createApiKey,
  createIssuer,
  readApiKey,
  requestRotation,
  secretValue,
  waitForEvent,
  waitForIssuer,
  waitForReady,
} from '../support/operator.ts';
import { startOperatorProcess } from '../support/operator-process.ts';
import { tool } from '../support/tools.ts';
import { waitFor } from '../support/wait.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const chart = path.join(repoRoot, 'charts/keyrotor');
// The admission policies are cluster-wide singletons: test/integration/readers.test.ts installs them,
// so releases installed here leave them out.
const NO_POLICIES = [
  '--set',
  'admissionPolicies.readers.enabled=false',
  '--set',
  'admissionPolicies.environments.enabled=false',
  '--set',
  'admissionPolicies.selfRestraint.enabled=false',
  '--set',
  'admissionPolicies.replicators.enabled=false',
];

describe('the Helm chart', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const cleanups: (() => Promise<void>)[] = [];
  const namespace = async (prefix: string, labels: Record<string, string> = {}) => {
    const created = await createTestNamespace(kc, prefix);
    if (Object.keys(labels).length > 0) {
      await core.patchNamespace(
        { name: created.name, body: { metadata: { labels } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    }
    cleanups.push(created.remove);
    return created.name;
  };
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('passes helm lint --strict', async () => {
    const result = await tool('helm', ['lint', chart, '--strict']);
    expect(result.stdout + result.stderr).toContain('0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  it('installs the same CRDs as crds/ and the same policies as policies/, one source of truth', async () => {
    for (const crd of [
      'keyrotor.dev_apikeys.yaml',
      'keyrotor.dev_apikeyissuers.yaml',
      'keyrotor.dev_apikeyreaders.yaml',
    ]) {
      expect(await readFile(path.join(chart, 'crds', crd), 'utf8')).toBe(
        await readFile(path.join(repoRoot, 'crds', crd), 'utf8'),
      );
    }
    for (const file of [
      'readers-policy.yaml',
      'environments-policy.yaml',
      'require-readers-policy.yaml',
      'require-environment-label-policy.yaml',
      'self-restraint-policy.yaml',
      'replicators-policy.yaml',
    ]) {
      expect(await readFile(path.join(chart, 'files', file), 'utf8')).toBe(
        await readFile(path.join(repoRoot, 'policies', file), 'utf8'),
      );
    }
  });

  it('refuses bad values with a message that names the value', async () => {
    const result = await tool('helm', [
      'template',
      'bad',
      chart,
      '--set',
      'operator.logLevel=loud',
      '--set',
      'watchNamespaces[0]=Not_A_Namespace',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("at '/operator/logLevel': value must be one of");
    expect(result.stderr).toContain("at '/watchNamespaces/0'");
    const unelected = await tool('helm', ['template', 'bad', chart, '--set', 'leaderElection.enabled=false']);
    expect(unelected.stderr).toContain('replicaCount above 1 needs leaderElection.enabled');
  });

  describe('renders objects the API server accepts', () => {
    let release: string;
    let watched: string[];
    beforeAll(async () => {
      // The release namespace warns on anything short of the restricted Pod Security Standard.
      release = await namespace('chart', {
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/enforce': 'restricted',
      });
      watched = [await namespace('watched-a'), await namespace('watched-b')];
    });

    it.each([
      ['the defaults (cluster-wide)', []],
      ['namespaced mode', ['--set', 'watchNamespaces={WATCHED}']],
      [
        'every switch on',
        [
          '--set',
          'podDisruptionBudget.enabled=true',
          '--set',
          'networkPolicy.enabled=true',
          '--set',
          'features.workloadRestarts=true',
          '--set',
          'serviceAccount.annotations.team=quant',
          '--set',
          'admissionPolicies.requireReaders.enabled=true',
          '--set',
          'admissionPolicies.readers.validationActions={Warn,Audit}',
          '--set',
          'admissionPolicies.environments.requireNamespaceLabel=true',
          '--set',
          'admissionPolicies.replicators.allowedKeys={reflector.v1.k8s.emberstack.com/}',
        ],
      ],
    ])('%s', async (_name, flags) => {
      const args = flags.map((flag) => flag.replace('WATCHED', watched.join(',')));
      const rendered = await tool('helm', ['template', 'validate', chart, '--namespace', release, ...args]);
      expect(rendered.stderr).toBe('');
      const applied = await tool('kubectl', ['apply', '--dry-run=server', '-f', '-'], rendered.stdout);
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);
      expect(applied.stdout).toContain('deployment.apps/validate-keyrotor created (server dry run)');
      const objects = loadAll(rendered.stdout).filter(Boolean) as {
        kind: string;
        metadata: { labels?: Record<string, string> };
      }[];
      for (const object of objects)
        expect(object.metadata.labels?.['app.kubernetes.io/instance']).toBe('validate');
    });

    it('renders the Prometheus Operator objects when asked', async () => {
      const rendered = await tool('helm', [
        'template',
        'validate',
        chart,
        '--set',
        'metrics.serviceMonitor.enabled=true',
        '--set',
        'metrics.prometheusRule.enabled=true',
      ]);
      const kinds = (loadAll(rendered.stdout).filter(Boolean) as { kind: string }[]).map(
        (object) => object.kind,
      );
      expect(kinds).toEqual(expect.arrayContaining(['ServiceMonitor', 'PrometheusRule']));
      const rule = (
        loadAll(rendered.stdout) as { kind?: string; spec?: { groups: { rules: { alert: string }[] }[] } }[]
      ).find((object) => (object as { kind?: string } | null)?.kind === 'PrometheusRule');
      expect(rule?.spec?.groups[0]?.rules.map((r) => r.alert)).toEqual([
        'KeyrotorKeyExpiringRotationFailing',
        'KeyrotorReconcileErrors',
        'KeyrotorCachesNotSynced',
        'KeyrotorNoLeader',
        'KeyrotorAbsent',
      ]);
    });

    it('runs the operator as non-root, read-only, with no capabilities and RuntimeDefault seccomp', async () => {
      const rendered = await tool('helm', ['template', 'validate', chart]);
      const deployment = (
        loadAll(rendered.stdout) as {
          kind?: string;
          spec?: { template: { spec: Record<string, unknown> } };
        }[]
      ).find((object) => (object as { kind?: string } | null)?.kind === 'Deployment');
      const pod = deployment?.spec?.template.spec as {
        securityContext: Record<string, unknown>;
        containers: Record<string, unknown>[];
      };
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.containers[0]).toMatchObject({
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
        livenessProbe: { httpGet: { path: '/healthz' } },
        readinessProbe: { httpGet: { path: '/readyz' } },
        resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
      });
    });
  });

  /** Installs a release and returns a kubeconfig that authenticates as its ServiceAccount only. */
  async function install(
    release: string,
    releaseNamespace: string,
    values: string[],
  ): Promise<{ kubeconfig: string; token: string }> {
    const installed = await tool('helm', [
      'install',
      release,
      chart,
      '--namespace',
      releaseNamespace,
      ...NO_POLICIES,
      ...values,
    ]);
    expect(installed.stderr.replace(/^.*skipping existing CRD.*\n?/gm, '')).toBe('');
    expect(installed.code).toBe(0);
    const request = await core.createNamespacedServiceAccountToken({
      namespace: releaseNamespace,
      name: `${release}-keyrotor`,
      body: { spec: { expirationSeconds: 3600, audiences: [] } },
    });
    const token = request.status?.token ?? '';
    const kubeconfig = path.join(os.tmpdir(), `${release}.kubeconfig`);
    await writeFile(kubeconfig, tokenKubeConfig(kc, token).exportConfig());
    return { kubeconfig, token };
  }

  it('installs; its ServiceAccount alone runs the lifecycle (issue, re-create, rotate, revoke, restart, readers, verifier) and is refused a sample of what it does not need', async () => {
    const releaseNamespace = await namespace('chart-cw');
    const workloads = await namespace('chart-cw-keys');
    const other = await namespace('chart-cw-other');
    // Restarts are off by default; this release asks for them (rolloutRestartTargets below).
    const { kubeconfig, token } = await install('cw', releaseNamespace, [
      '--set',
      'features.workloadRestarts=true',
    ]);
    // As the chart runs it: with leader election on the release's Lease, which its Role allows.
    const operator = await startOperatorProcess(kubeconfig, [
      '--namespaces',
      workloads,
      '--leader-elect',
      `--leader-election-namespace=${releaseNamespace}`,
      // The chart runs it with POD_NAMESPACE set: the seal key lives in the release namespace.
      `--seal-secret=${releaseNamespace}/keyrotor-seal`,
      '--leader-election-id=cw-keyrotor',
      '--instance=cw-0',
      '--metrics-auth=true',
    ]);
    try {
      await waitFor(
        async () =>
          (
            await kc
              .makeApiClient(CoordinationV1Api)
              .readNamespacedLease({ namespace: releaseNamespace, name: 'cw-keyrotor' })
              .catch(() => undefined)
          )?.spec?.holderIdentity === 'cw-0'
            ? true
            : undefined,
        { description: 'the chart operator to hold its Lease' },
      );
      await createDeployment(kc, workloads, 'bot');
      await createIssuer(kc, workloads, 'chart-api', { scopes: ['prices:*'] });
      await createApiKey(kc, workloads, 'via-chart', {
        rolloutRestartTargets: [{ kind: 'Deployment', name: 'bot' }],
        issuerRef: { namespace: workloads, name: 'chart-api' },
      });
      const first = await waitForReady(kc, workloads, 'via-chart');
      // The issuer's verifier Secret and status: written by the chart's ServiceAccount too.
      await waitForIssuer(
        kc,
        workloads,
        'chart-api',
        (issuer) => issuer.status?.activeKeys === 1 && issuer.status.conditions?.[0]?.status === 'True',
        'the verifier lists the key',
      );
      await waitForEvent(kc, workloads, 'via-chart', 'Issued');
      await core.deleteNamespacedSecret({ namespace: workloads, name: 'via-chart' });
      const second = await waitForReady(kc, workloads, 'via-chart', { keyIdNot: first.status?.keyId ?? '' });
      await waitForEvent(kc, workloads, 'via-chart', 'WorkloadRestarted');
      expect((await readApiKey(kc, workloads, 'via-chart')).status?.keyId).toBe(second.status?.keyId);
      // A rotation asked for, then a revocation: the rest of the lifecycle, with the chart's RBAC too.
      await requestRotation(kc, workloads, 'via-chart', 'chart-rotation');
      const third = await waitForReady(kc, workloads, 'via-chart', { keyIdNot: second.status?.keyId ?? '' });
      expect(third.status?.lastRotateRequest).toBe('chart-rotation');
      await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: workloads,
          plural: PLURAL,
          name: 'via-chart',
          body: { spec: { revoked: true, revocationReason: 'chart test' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await waitForReady(kc, workloads, 'via-chart', { status: 'False', reason: 'Revoked' });
      const revokedSecret = await core.readNamespacedSecret({ namespace: workloads, name: 'via-chart' });
      expect(secretValue(revokedSecret, 'api-key')).toBeUndefined();
      await waitForIssuer(
        kc,
        workloads,
        'chart-api',
        (issuer) => issuer.status?.activeKeys === 0,
        'the verifier to drop the revoked key',
      );
      // Readers with the chart's RBAC: a Role and RoleBinding on the Secret, the mount guard's
      // ApiKeyReaders object and the namespace label, all written by the chart's ServiceAccount.
      await createApiKey(kc, workloads, 'with-readers', { readers: { serviceAccounts: ['reporting'] } });
      await waitForReady(kc, workloads, 'with-readers');
      const rbacApi = kc.makeApiClient(RbacAuthorizationV1Api);
      await waitFor(
        async () =>
          (await rbacApi.listNamespacedRoleBinding({ namespace: workloads })).items.some((binding) =>
            binding.subjects?.some((subject) => subject.name === 'reporting'),
          ) &&
          (await core.readNamespace({ name: workloads })).metadata?.labels?.['keyrotor.dev/mount-guard'] !==
            undefined
            ? true
            : undefined,
        { description: 'reader RBAC and the mount-guard label, written with the chart RBAC' },
      );
      // /metrics reviews tokens with the chart's RBAC: refused without one, served to an allowed one.
      expect((await fetch(`${operator.url}/metrics`)).status).toBe(401);
      const adminToken = kc.getCurrentUser()?.token ?? '';
      const scraped = await fetch(`${operator.url}/metrics`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      expect(scraped.status).toBe(200);
    } finally {
      await operator.kill();
    }

    const asOperator = tokenKubeConfig(kc, token).makeApiClient(CoreV1Api);
    // Pods are listed (the mount guard looks for consumers that are not readers), never written.
    expect(
      (
        await failureStatus(
          asOperator.createNamespacedPod({ namespace: other, body: { metadata: { name: 'x' } } }),
        )
      ).code,
    ).toBe(403);
    expect((await failureStatus(asOperator.listNamespacedConfigMap({ namespace: other }))).code).toBe(403);
    // Namespaces are read (issuers select consumers by their labels) and labelled (the mount guard),
    // never created or deleted.
    expect((await asOperator.listNamespace()).items.length).toBeGreaterThan(0);
    expect((await failureStatus(asOperator.deleteNamespace({ name: other }))).code).toBe(403);
    expect(
      (
        await failureStatus(
          asOperator.createNamespacedServiceAccount({ namespace: other, body: { metadata: { name: 'x' } } }),
        )
      ).code,
    ).toBe(403);
    expect(
      (
        await failureStatus(
          tokenKubeConfig(kc, token).makeApiClient(RbacAuthorizationV1Api).listClusterRole(),
        )
      ).code,
    ).toBe(403);

    const uninstalled = await tool('helm', ['uninstall', 'cw', '--namespace', releaseNamespace]);
    expect(uninstalled.code).toBe(0);
    // The ServiceAccount is gone, and its token with it (once the API server's caches notice).
    await waitFor(
      async () =>
        (await failureStatus(asOperator.listNamespacedSecret({ namespace: workloads }))).code === 401
          ? true
          : undefined,
      { description: "the uninstalled ServiceAccount's token to be refused" },
    );
  });

  it('in namespaced mode reaches only the listed namespaces; upgrade and uninstall leave no orphans', async () => {
    const releaseNamespace = await namespace('chart-ns');
    const listed = await namespace('chart-ns-listed');
    const unlisted = await namespace('chart-ns-unlisted');
    const added = await namespace('chart-ns-added');
    const { kubeconfig, token } = await install('nsmode', releaseNamespace, [
      '--set',
      `watchNamespaces={${listed}}`,
    ]);
    const operator = await startOperatorProcess(kubeconfig, [
      '--namespaces',
      listed,
      `--seal-secret=${releaseNamespace}/keyrotor-seal`,
    ]);
    try {
      await createApiKey(kc, listed, 'scoped');
      await waitForReady(kc, listed, 'scoped');
    } finally {
      await operator.kill();
    }
    const asOperator = tokenKubeConfig(kc, token);
    const secrets = asOperator.makeApiClient(CoreV1Api);
    expect((await failureStatus(secrets.listNamespacedSecret({ namespace: unlisted }))).code).toBe(403);
    expect((await failureStatus(secrets.listSecretForAllNamespaces())).code).toBe(403);
    // By default no workload is writable, and only the listed namespaces can be labelled.
    const mayI = async (verb: string, group: string, resource: string, ns: string, name?: string) =>
      (
        await asOperator.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
          body: {
            spec: { resourceAttributes: { verb, group, resource, namespace: ns, ...(name ? { name } : {}) } },
          },
        })
      ).status?.allowed === true;
    expect(await mayI('patch', 'apps', 'deployments', listed)).toBe(false);
    expect(await mayI('patch', '', 'namespaces', '', listed)).toBe(true);
    expect(await mayI('patch', '', 'namespaces', '', unlisted)).toBe(false);
    const custom = asOperator.makeApiClient(CustomObjectsApi);
    expect(
      (
        await failureStatus(
          custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: unlisted,
            plural: PLURAL,
          }),
        )
      ).code,
    ).toBe(403);

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const roleIn = async (ns: string) =>
      (await rbac.listNamespacedRole({ namespace: ns, labelSelector: 'app.kubernetes.io/instance=nsmode' }))
        .items.length;
    const upgradeTo = (namespaces: string[]) =>
      tool('helm', [
        'upgrade',
        'nsmode',
        chart,
        '--namespace',
        releaseNamespace,
        ...NO_POLICIES,
        '--set',
        `watchNamespaces={${namespaces.join(',')}}`,
      ]);
    expect((await upgradeTo([listed, added])).code).toBe(0);
    expect(await roleIn(added)).toBe(1);
    expect((await upgradeTo([listed])).code).toBe(0);
    expect(await roleIn(added)).toBe(0);

    expect((await tool('helm', ['uninstall', 'nsmode', '--namespace', releaseNamespace])).code).toBe(0);
    const left = await tool('kubectl', [
      'get',
      'all,roles,rolebindings,serviceaccounts,clusterroles,clusterrolebindings,networkpolicies,poddisruptionbudgets',
      '-A',
      '-l',
      'app.kubernetes.io/instance=nsmode',
      '-o',
      'name',
    ]);
    // An unknown type or a refused connection also prints nothing: only a successful get counts.
    expect(left.code).toBe(0);
    expect(left.stdout.trim()).toBe('');
    // CRDs stay, by Helm's rule.
    expect(
      load((await tool('kubectl', ['get', 'crd', 'apikeys.keyrotor.dev', '-o', 'yaml'])).stdout),
    ).toBeTruthy();
  });
});
