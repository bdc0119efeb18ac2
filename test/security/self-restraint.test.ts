// keyrotor restrains itself (issue 16, item 3): the chart's policy keyrotor-self-restraint limits what
// keyrotor's own ServiceAccount may write to the writes keyrotor makes. Acting with that ServiceAccount's
// token, with the chart's RBAC (cluster-wide mode, the widest) and a broader grant on top, every write
// keyrotor never makes is refused by the policy, while the operator itself, run as that ServiceAccount,
// still issues, re-creates, adopts, grants readers, guards mounts and restarts workloads.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import {
  AppsV1Api,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { load, loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, READERS_PLURAL, VERSION } from '../../operator/src/api/names.ts';
import {
  adminKubeConfig,
  createDeployment,
  createTestNamespace,
  failureStatus,
  tokenKubeConfig,
} from '../support/kube.ts';
import { createApiKey, waitForEvent, waitForReady } from '../support/operator.ts';
import { startOperatorProcess } from '../support/operator-process.ts';
import { waitFor } from '../support/wait.ts';
import {
  ALL_POLICIES_OFF,
  applyObjects,
  deleteObjects,
  deniedBy,
  messageOf,
  renamePolicies,
  renderChart,
  type KubeObject,
} from './chart-policies.ts';
import { broadRbac, writes, type Write } from './self-restraint.writes.ts';

const CHART_KINDS = [
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
];
const dryRun = 'All';

describe('keyrotor restrains itself', () => {
  const admin = adminKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const cleanups: (() => Promise<void>)[] = [];
  let applied: KubeObject[] = [];
  let release: string;
  let releaseNamespace: string;
  let keys: string;
  let listed: string;
  let policy: string;
  let asKeyrotor: KubeConfig;
  let kubeconfig: string;

  const namespace = async (prefix: string) => {
    const created = await createTestNamespace(admin, prefix);
    cleanups.push(created.remove);
    return created.name;
  };

  /** A token of a ServiceAccount, and a kubeconfig file that uses it. */
  async function tokenOf(ns: string, name: string): Promise<{ kc: KubeConfig; file: string }> {
    const request = await core.createNamespacedServiceAccountToken({
      namespace: ns,
      name,
      body: { spec: { expirationSeconds: 3600, audiences: [] } },
    });
    const kc = tokenKubeConfig(admin, request.status?.token ?? '');
    const file = path.join(os.tmpdir(), `${ns}-${name}.kubeconfig`);
    await writeFile(file, kc.exportConfig());
    return { kc, file };
  }

  /** Waits until the policy refuses a write only it refuses (policies reach the API server in moments). */
  async function waitForPolicy(kc: KubeConfig, name: string): Promise<void> {
    const secret = { metadata: { name: 'policy-probe' }, type: 'Opaque' };
    await waitFor(
      async () => {
        const refused = await failureStatus(
          kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: keys, body: secret, dryRun }),
        ).catch(() => undefined);
        return refused?.body.includes(deniedBy(name)) === true ? true : undefined;
      },
      { description: `policy ${name} to refuse an Opaque Secret` },
    );
  }

  beforeAll(async () => {
    releaseNamespace = await namespace('restrained');
    keys = await namespace('restrained-keys');
    listed = await namespace('restrained-listed');
    release = `r${releaseNamespace.slice(-6)}`;
    const objects = await renderChart(
      release,
      releaseNamespace,
      [
        ...ALL_POLICIES_OFF,
        '--set',
        'admissionPolicies.selfRestraint.enabled=true',
        '--set',
        `admissionPolicies.selfRestraint.forbiddenNamespaces={${listed}}`,
      ],
      CHART_KINDS,
    );
    applied = renamePolicies(objects, release);
    policy = `keyrotor-self-restraint-${release}`;
    const serviceAccount = `${release}-keyrotor`;
    // RBAC for every write below, whatever the chart's grants: the policy, not RBAC, must refuse them.
    const extra = broadRbac(`${release}-extra`, { name: serviceAccount, namespace: releaseNamespace });
    applied.push(...extra);
    await applyObjects(applied);
    const token = await tokenOf(releaseNamespace, serviceAccount);
    asKeyrotor = token.kc;
    kubeconfig = token.file;
    await waitForPolicy(asKeyrotor, policy);
  });
  afterAll(async () => {
    await deleteObjects(applied.filter((object) => object.metadata.namespace === undefined));
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('still lets the operator, run as its ServiceAccount, make every write it makes', async () => {
    await createDeployment(admin, keys, 'bot');
    await core.createNamespacedServiceAccount({ namespace: keys, body: { metadata: { name: 'bot' } } });
    // A Secret of another type that keyrotor may take over: it is deleted and re-created with its type.
    await core.createNamespacedSecret({
      namespace: keys,
      body: { metadata: { name: 'adopted', annotations: { 'keyrotor.dev/adopt': 'true' } }, type: 'Opaque' },
    });
    const operator = await startOperatorProcess(kubeconfig, [
      '--namespaces', keys, '--leader-elect', `--leader-election-namespace=${releaseNamespace}`,
      `--leader-election-id=${release}-keyrotor`, `--seal-secret=${releaseNamespace}/keyrotor-seal`,
    ]); // prettier-ignore
    try {
      await createApiKey(admin, keys, 'bot-key', {
        readers: { serviceAccounts: ['bot'] },
        rolloutRestartTargets: [{ kind: 'Deployment', name: 'bot' }],
      });
      const first = await waitForReady(admin, keys, 'bot-key');
      await waitFor(
        () => rbac.readNamespacedRoleBinding({ namespace: keys, name: 'keyrotor:bot-key:readers' }),
        { description: 'the reader RoleBinding' },
      );
      await waitFor(
        () =>
          admin.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
            ...{ group: GROUP, version: VERSION, namespace: keys, plural: READERS_PLURAL },
            name: 'keyrotor-readers',
          }),
        { description: "the mount guard's ApiKeyReaders" },
      );
      await core.deleteNamespacedSecret({ namespace: keys, name: 'bot-key' });
      await waitForReady(admin, keys, 'bot-key', { keyIdNot: first.status?.keyId ?? '' });
      await waitForEvent(admin, keys, 'bot-key', 'WorkloadRestarted');
      const deployment = await admin
        .makeApiClient(AppsV1Api)
        .readNamespacedDeployment({ namespace: keys, name: 'bot' });
      expect(deployment.spec?.template.metadata?.annotations?.['keyrotor.dev/restartedAt']).toBeDefined();
      await createApiKey(admin, keys, 'adopted');
      await waitForReady(admin, keys, 'adopted');
      expect((await core.readNamespacedSecret({ namespace: keys, name: 'adopted' })).type).toBe(
        'keyrotor.dev/api-key',
      );
      // Nothing keyrotor did was refused.
      expect(operator.lines.filter((line) => JSON.stringify(line).includes(policy))).toEqual([]);
    } finally {
      await operator.kill();
    }
  });

  it('lets its ServiceAccount label a namespace for the mount guard and review /metrics tokens', async () => {
    // Removed and set again: the operator run left it set.
    const guard = async (value: string | null) => {
      const labels = { 'keyrotor.dev/mount-guard': value };
      await asKeyrotor
        .makeApiClient(CoreV1Api)
        .patchNamespace(
          { name: keys, body: { metadata: { labels } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      return (await core.readNamespace({ name: keys })).metadata?.labels?.['keyrotor.dev/mount-guard'];
    };
    expect(await guard(null)).toBeUndefined();
    expect(await guard('enforced')).toBe('enforced');
    // Who may scrape /metrics: reviews store nothing.
    await asKeyrotor.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: 'x' } } });
    const review = { spec: { user: 'someone', nonResourceAttributes: { path: '/metrics', verb: 'get' } } };
    await asKeyrotor.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({ body: review });
  });

  describe('refuses, by the policy, what keyrotor never writes', () => {
    let cases: Write[] = [];
    beforeAll(async () => {
      cases = await writes({ admin, asKeyrotor, keys, listed });
    });

    // prettier-ignore
    it.each([
      'Secrets', 'Roles', 'RoleBindings', 'ConfigMaps and ApiKeyReaders', 'workloads', 'Namespaces', 'forbidden namespaces', 'anything else',
    ])('%s', async (group) => {
      const mine = cases.filter((write) => write.group === group);
      expect(mine.length).toBeGreaterThan(0);
      for (const write of mine) {
        const refused = await failureStatus(write.call()).catch(() => ({ code: 0, body: `${write.what}: admitted` }));
        const message = messageOf(refused.body);
        expect(message, write.what).toContain(deniedBy(policy));
        expect(message, write.what).toContain(write.message);
        expect(refused.code, write.what).toBe(403);
      }
    });
  });

  it('restrains another ServiceAccount with the policies/ copy filled in as its header says', async () => {
    const operators = await namespace('restrained-other');
    await core.createNamespacedServiceAccount({
      namespace: operators,
      body: { metadata: { name: 'keyrotor-sa' } },
    });
    const grant = broadRbac(`${release}-other`, { name: 'keyrotor-sa', namespace: operators });
    // The sed command of the file's header, with this test's namespace for "operators".
    const file = path.resolve(import.meta.dirname, '../../policies/self-restraint-policy.yaml');
    const script = /sed '([^']+)'/.exec(await readFile(file, 'utf8'))?.[1] ?? '';
    expect(script).toContain(':operators:keyrotor-sa/');
    const { stdout } = await promisify(execFile)('sed', [
      script.replace(':operators:', `:${operators}:`),
      file,
    ]);
    const filled = load(stdout) as KubeObject;
    const bindings = loadAll(
      await readFile(path.join(path.dirname(file), 'bindings.yaml'), 'utf8'),
    ) as KubeObject[];
    const own = renamePolicies(
      [filled, ...bindings.filter((b) => b.metadata.name === filled.metadata.name)],
      `${release}-file`,
    );
    expect(own).toHaveLength(2);
    applied.push(...grant, ...own);
    await applyObjects([...grant, ...own]);
    const other = (await tokenOf(operators, 'keyrotor-sa')).kc;
    await waitForPolicy(other, `keyrotor-self-restraint-${release}-file`);
  });
});
