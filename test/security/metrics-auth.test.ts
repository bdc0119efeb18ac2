// /metrics lists every ApiKey's namespace, name and expiry: it answers only a bearer token the API
// server authenticates (TokenReview) and authorizes for get on nonResourceURL /metrics
// (SubjectAccessReview), as controller-runtime's metrics filter does. The probes stay open.
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {
  AuthorizationV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { adminKubeConfig, createTestNamespace } from '../support/kube.ts';
import { createApiKey, waitForReady } from '../support/operator.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';
import { tool } from '../support/tools.ts';
import { waitFor } from '../support/wait.ts';

const chart = path.resolve(import.meta.dirname, '../../charts/keyrotor');
const REVIEWS = /^keyrotor_metrics_auth_reviews_total\{kind="(tokenreview|subjectaccessreview)"\} (\d+)$/gm;

describe('/metrics behind TokenReview and SubjectAccessReview', () => {
  const admin = adminKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};
  let operator: OperatorProcess | undefined;
  let tenant: Tenant;
  let scraperToken: string;
  let readerRole: string;

  const scrape = (token?: string, scheme = 'Bearer') =>
    fetch(`${operator?.url ?? ''}/metrics`, {
      headers: token === undefined ? {} : { authorization: `${scheme} ${token}` },
    });
  const reviewsSoFar = async (token: string) => {
    const response = await scrape(token);
    expect(response.status).toBe(200);
    const text = await response.text();
    return [...text.matchAll(REVIEWS)].reduce((sum, match) => sum + Number(match[2]), 0);
  };

  beforeAll(async () => {
    const created = await createTestNamespace(admin, 'metrics-auth');
    namespace = created.name;
    removeNamespace = created.remove;
    const kubeconfig = path.join(os.tmpdir(), `${namespace}.kubeconfig`);
    await writeFile(kubeconfig, admin.exportConfig());
    // Explicitly on, whatever default a test helper passes before these arguments.
    operator = await startOperatorProcess(kubeconfig, ['--namespaces', namespace, '--metrics-auth=true']);
    tenant = await createTenant(admin, namespace);

    // The chart's own metrics-reader ClusterRole, under a name of this test's.
    const rendered = await tool('helm', ['template', 'mauth', chart, '--show-only', 'templates/rbac.yaml']);
    const chartRole = (
      loadAll(rendered.stdout) as ({ kind: string; metadata: { name: string } } | null)[]
    ).find(
      (object) => object?.kind === 'ClusterRole' && object.metadata.name === 'mauth-keyrotor-metrics-reader',
    ) as { rules: V1PolicyRule[] } | undefined;
    expect(chartRole?.rules).toEqual([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
    readerRole = `${namespace}-metrics-reader`;
    await rbac.createClusterRole({ body: { metadata: { name: readerRole }, rules: chartRole?.rules ?? [] } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'scraper' } } });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: readerRole },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: readerRole },
        subjects: [{ kind: 'ServiceAccount', name: 'scraper', namespace }],
      },
    });
    const request = await core.createNamespacedServiceAccountToken({
      namespace,
      name: 'scraper',
      body: { spec: { expirationSeconds: 3600, audiences: [] } },
    });
    scraperToken = request.status?.token ?? '';
    // The authorizer's cache has the binding before anything is asserted.
    const authz = admin.makeApiClient(AuthorizationV1Api);
    await waitFor(
      async () =>
        (
          await authz.createSubjectAccessReview({
            body: {
              spec: {
                user: `system:serviceaccount:${namespace}:scraper`,
                nonResourceAttributes: { path: '/metrics', verb: 'get' },
              },
            },
          })
        ).status?.allowed === true
          ? true
          : undefined,
      { description: 'the scraper to be allowed get on /metrics' },
    );
    await createApiKey(admin, namespace, 'metered');
    await waitForReady(admin, namespace, 'metered');
  });
  afterAll(async () => {
    await operator?.kill();
    await rbac.deleteClusterRoleBinding({ name: readerRole }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: readerRole }).catch(() => undefined);
    await removeNamespace();
  });

  it('answers 401, and no metrics, without a token, with another scheme, or with a token the API server does not know', async () => {
    for (const response of [
      await scrape(),
      await scrape(scraperToken, 'Basic'),
      await scrape('not-a-token-the-api-server-issued'),
    ]) {
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(await response.text()).not.toContain('keyrotor_');
    }
  });

  it("answers 403, and no metrics, to a tenant's valid token that is not granted get on /metrics", async () => {
    const tenantToken = tenant.kc.getCurrentUser()?.token ?? '';
    expect(tenantToken).not.toBe('');
    const response = await scrape(tenantToken);
    expect(response.status).toBe(403);
    expect(await response.text()).not.toContain('keyrotor_apikey_expiration_timestamp_seconds');
  });

  it("serves the metrics to a token bound to the chart's metrics-reader ClusterRole", async () => {
    const response = await scrape(scraperToken);
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(
      new RegExp(
        `^keyrotor_apikey_expiration_timestamp_seconds\\{namespace="${namespace}",name="metered"\\}`,
        'm',
      ),
    );
  });

  it('keeps /healthz and /readyz open (the kubelet sends no token)', async () => {
    expect((await fetch(`${operator?.url ?? ''}/healthz`)).status).toBe(200);
    expect((await fetch(`${operator?.url ?? ''}/readyz`)).status).toBe(200);
  });

  it('reuses a review for a few seconds: repeated scrapes with one token cost no more API calls', async () => {
    // A token of its own, so no earlier scrape's cached answer can expire in the middle.
    const fresh =
      (
        await core.createNamespacedServiceAccountToken({
          namespace,
          name: 'scraper',
          body: { spec: { expirationSeconds: 600, audiences: [] } },
        })
      ).status?.token ?? '';
    const before = await reviewsSoFar(fresh);
    // Its first scrape was reviewed: a TokenReview and a SubjectAccessReview at least, by now.
    expect(before).toBeGreaterThanOrEqual(2);
    for (let scrapeCount = 0; scrapeCount < 5; scrapeCount += 1)
      expect((await scrape(fresh)).status).toBe(200);
    expect(await reviewsSoFar(fresh)).toBe(before);
  });

  it('stops serving a token whose grant is removed, once its cached review expires', async () => {
    await rbac.deleteClusterRoleBinding({ name: readerRole });
    await waitFor(async () => ((await scrape(scraperToken)).status === 403 ? true : undefined), {
      description: 'the unbound scraper to be refused',
      timeoutMs: 30_000,
      intervalMs: 500,
    });
  });
});
