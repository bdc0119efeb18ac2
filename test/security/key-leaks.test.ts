// Adversarial: keyrotor never writes a key anywhere but its Secret. Every key its generator makes over a
// whole lifecycle (issue; rotation on expiry, on a schedule and on demand; a grace period that ends;
// revocation and reissue; a tampered Secret; an issuer's consumer key; readers; rendered Secret parts)
// is looked for, plain, base64 (any alignment), base64url, hex and by its first and last 12 random
// characters, in: the log as the operator wrote it (before the logger's final scrub, so a key the
// scrub would have caught still counts), the log after it, the audit lines, every version of every
// Event, ApiKey and ApiKeyIssuer, every verifier document, the readers' RBAC, /metrics and the CLI's
// `status`. The same search, run on text with a key planted in it, must find it. Threat T14.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GROUP, PLURAL, VERSION } from '../../operator/src/api/names.ts';
import type { ApiKey } from '../../operator/src/api/types.ts';
import { formatKey, generateKey, keyHash, keyId } from '../../operator/src/keys/format.ts';
import { REDACTED } from '../../operator/src/observability/logger.ts';
import { adminKubeConfig, createTestNamespace } from '../support/kube.ts';
import {
  describeLeaks,
  findLeaks,
  keyForms,
  kubeconfigFile,
  keysInSecrets,
  randomPart,
  recordingGenerator,
  recordObjects,
  redactedLines,
  runKeyrotor,
  verifierDocuments,
  type ObjectRecorder,
} from '../support/leak-search.ts';
import { startOperatorProcess, type OperatorProcess } from '../support/operator-process.ts';
import {
  createApiKey,
  createIssuer,
  readApiKey,
  requestRotation,
  secretValue,
  startOperator,
  waitForEvent,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { waitFor } from '../support/wait.ts';

const MINUTE = 60_000;
const b64 = (text: string) => Buffer.from(text).toString('base64');
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const json = (objects: readonly unknown[]) => objects.map((object) => JSON.stringify(object));
const patchApiKey = (kc: KubeConfig, namespace: string, name: string, body: object) =>
  kc
    .makeApiClient(CustomObjectsApi)
    .patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body },
      mergePatch,
    );

describe('the leak search itself', () => {
  const key = generateKey({ prefix: 'kr', environment: 'production', bits: 256 });
  const other = generateKey({ prefix: 'kr', environment: 'production', bits: 256 });
  const plantings: Record<string, string> = {
    plain: `{"level":"info","msg":"issued ${key}"}`,
    'base64 (offset 0)': `{"data":{"api-key":"${b64(key)}"}}`,
    'base64 (offset 2)': `{"body":"${b64(JSON.stringify({ key }))}"}`,
    'base64url (offset 0)': `token=${Buffer.from(key).toString('base64url')}`,
    hex: `0x${Buffer.from(key).toString('hex')}`,
    HEX: Buffer.from(key).toString('hex').toUpperCase(),
    'first 12 (after prefix and tag)': `{"note":"key starts ${randomPart(key).slice(0, 12)}"}`,
    'last 12': `{"note":"key ends …${key.slice(-12)}"}`,
  };

  for (const [form, text] of Object.entries(plantings))
    it(`finds a key planted ${form} in a log line and an event`, () => {
      const leaks = findLeaks([key, other], { log: ['clean', text], event: [text] });
      expect(
        leaks.filter((leak) => leak.form === form).map(({ source, index }) => `${source}[${index}]`),
      ).toEqual(['log[1]', 'event[0]']);
    });

  it('does not take the prefix every key shares, or its hash, for a leak; finds a redaction', () => {
    expect(findLeaks([key], { log: [`${other} kr_live_ ${keyHash(key)}`] })).toEqual([]);
    expect(redactedLines({ log: ['clean', `{"msg":"${REDACTED}"}`] })).toEqual([`${REDACTED} in log[1]`]);
    expect(keyForms(key).every((form) => !form.needle.startsWith('kr_live_') || form.form === 'plain')).toBe(
      true,
    );
  });
});

describe('keys over a whole lifecycle', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const generator = recordingGenerator();
  const recorders: Record<string, ObjectRecorder> = {};
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};
  let operator: TestOperator | undefined;
  let offsetMs = 0;
  const clock = () => new Date(Date.now() + offsetMs);

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'key-leaks'));
    const apis = `/apis/${GROUP}/${VERSION}/namespaces/${namespace}`;
    // Watched from before the first object: every version written is kept.
    for (const [name, collection] of Object.entries({
      apiKeys: `${apis}/${PLURAL}`,
      issuers: `${apis}/apikeyissuers`,
      events: `/apis/events.k8s.io/v1/namespaces/${namespace}/events`,
      secrets: `/api/v1/namespaces/${namespace}/secrets`,
    }))
      recorders[name] = await recordObjects(kc, collection);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'app' } } });
    operator = await startOperator(
      kc,
      namespace,
      { now: clock, decideConfig: { generateKey: generator.generateKey }, verifierBatchMs: 200 },
      { unscrubbedLogs: true },
    );
  });
  afterAll(async () => {
    await operator?.stop();
    for (const recorder of Object.values(recorders)) recorder.stop();
    await removeNamespace();
  });

  const recorded = (name: string) => recorders[name]?.versions ?? [];
  /** Moves the operator's clock and makes it look at every ApiKey, as its timers would. */
  const advance = async (ms: number) => {
    offsetMs += ms;
    operator?.controller.resyncNow();
    await operator?.controller.idle();
  };
  const secretOf = (name: string) => core.readNamespacedSecret({ namespace, name });
  const keyIdOf = async (name: string) => (await readApiKey(kc, namespace, name)).status?.keyId ?? '';
  const rotated = async (name: string, from: string) => waitForReady(kc, namespace, name, { keyIdNot: from });
  const graceOver = (name: string) =>
    waitFor(
      async () => (secretValue(await secretOf(name), 'previous-api-key') === undefined ? true : undefined),
      {
        description: `the previous key of ${name} to be retired`,
      },
    );

  /** Every path a key takes; returns the key planted by "someone else". */
  async function lifecycle(): Promise<string> {
    await createIssuer(kc, namespace, 'prices', { scopes: ['prices:*'] });
    const rotation = { rotateBefore: '20m', gracePeriod: '1m' };
    await createApiKey(kc, namespace, 'life', {
      expiresAfter: '1h',
      rotation,
      readers: { serviceAccounts: ['app'] },
      secretTemplate: { data: { API_KEY: '{{ .key }}', 'config.yaml': 'api:\n  key: {{ .key }}\n' } },
    });
    await createApiKey(kc, namespace, 'cron', { expiresAfter: '1d', rotation: { schedule: '0 * * * *' } });
    await createApiKey(kc, namespace, 'consumer', {
      expiresAfter: '1h',
      rotation,
      issuerRef: { namespace, name: 'prices' },
    });
    const [life, cron, consumer] = await Promise.all(
      ['life', 'cron', 'consumer'].map(
        async (name) => (await waitForReady(kc, namespace, name)).status?.keyId ?? '',
      ),
    );

    // Expiry (life, consumer); then the grace period's end (life) and the hourly schedule (cron).
    await advance(41 * MINUTE);
    await rotated('life', life ?? '');
    await rotated('consumer', consumer ?? '');
    await advance(20 * MINUTE);
    const scheduled = await rotated('cron', cron ?? '');
    expect(scheduled.status?.history?.[0]?.reason).toBe('Schedule');
    await graceOver('life');

    // On demand, with a grace period that ends.
    const expired = await keyIdOf('life');
    await requestRotation(kc, namespace, 'life', 'leak-drill');
    await rotated('life', expired);
    expect(secretValue(await secretOf('life'), 'previous-api-key')).toBeDefined();
    await advance(2 * MINUTE);
    await graceOver('life');

    // Revoked, then reissued.
    const manual = await keyIdOf('life');
    await patchApiKey(kc, namespace, 'life', { spec: { revoked: true, revocationReason: 'leak drill' } });
    await waitForReady(kc, namespace, 'life', { status: 'False', reason: 'Revoked' });
    await patchApiKey(kc, namespace, 'life', { spec: { revoked: false, revocationReason: null } });
    const reissued = (await rotated('life', manual)).status?.keyId ?? '';

    // A key of someone else's choosing in the Secret is replaced; it must not leak either.
    const planted = formatKey(
      { prefix: 'kr', environment: 'production', bits: 256 },
      new Uint8Array(32).fill(7),
    );
    await core.patchNamespacedSecret(
      { namespace, name: 'life', body: { stringData: { 'api-key': planted } } },
      mergePatch,
    );
    await waitForEvent(kc, namespace, 'life', 'SecretTampered');
    await rotated('life', reissued);
    return planted;
  }

  /** Every text the operator wrote that is not a key Secret, once everything it did has been seen. */
  async function everythingWritten() {
    // Settled: the verifier lists the consumer's current key, the readers hold their grant.
    await operator?.controller.idle();
    const consumerHash = keyHash(secretValue(await secretOf('consumer'), 'api-key') ?? '');
    await waitFor(
      () =>
        verifierDocuments(recorded('secrets')).some((text) => text.includes(consumerHash)) ? true : undefined,
      { description: "the verifier to list the consumer's current key" },
    );
    await waitFor(() => rbac.readNamespacedRole({ namespace, name: 'keyrotor:life:readers' }), {
      description: "the readers' Role of life",
    });
    for (const recorder of Object.values(recorders)) await recorder.caughtUp();

    const kubeconfig = await kubeconfigFile(kc, namespace);
    const cliRuns = await Promise.all(
      [['status'], ['status', '-o', 'json'], ['status', 'life', '-o', 'json']].map((args) =>
        runKeyrotor([...args, '--kubeconfig', kubeconfig, '-n', namespace]),
      ),
    );
    const rbacObjects = [
      ...(await rbac.listNamespacedRole({ namespace })).items,
      ...(await rbac.listNamespacedRoleBinding({ namespace })).items,
    ];
    const logs = operator?.logLines ?? [];
    const sources = {
      'unscrubbed log': operator?.unscrubbedLogLines ?? [],
      log: logs,
      audit: logs.filter((line) => (JSON.parse(line) as { audit?: boolean }).audit === true),
      event: json(recorded('events')),
      'ApiKey version': json(recorded('apiKeys')),
      'ApiKeyIssuer version': json(recorded('issuers')),
      'verifier document': verifierDocuments(recorded('secrets')),
      'readers RBAC': json(rbacObjects),
      metrics: [(await operator?.controller.metrics.registry.metrics()) ?? ''],
      'keyrotor status': cliRuns.map((run) => run.output),
    };
    expect(cliRuns.map((run) => run.code)).toEqual([0, 0, 0]);
    return sources;
  }

  it('never writes a key it generated anywhere but the key Secret', async () => {
    const planted = await lifecycle();
    const sources = await everythingWritten();
    const logs = sources.log;

    // Not vacuous: the keys, the texts, and the paths the lifecycle took.
    const generated = new Set(generator.keys);
    const inSecrets = new Set(keysInSecrets(recorded('secrets')));
    expect(generated.size).toBeGreaterThanOrEqual(9); // life 5, cron 2, consumer 2
    expect([...inSecrets].filter((key) => !generated.has(key))).toEqual([planted]);
    expect(sources['unscrubbed log'].length).toBe(logs.length);
    const actions = new Set(sources.audit.map((line) => (JSON.parse(line) as { action: string }).action));
    expect([...actions]).toEqual(
      expect.arrayContaining(['issued', 'rotated', 'retired', 'revoked', 'replaced-tampered']),
    );
    const reasons = new Set((recorded('events') as { reason?: string }[]).map((event) => event.reason));
    expect([...reasons]).toEqual(
      expect.arrayContaining(['Issued', 'Rotated', 'PreviousKeyRetired', 'Revoked', 'SecretTampered']),
    );
    // Every key a Secret held had its id in some status version: the watch saw them all.
    const statusIds = new Set((recorded('apiKeys') as ApiKey[]).map((apiKey) => apiKey.status?.keyId));
    expect([...inSecrets].filter((key) => key !== planted && !statusIds.has(keyId(key)))).toEqual([]);
    expect(sources['verifier document'].length).toBeGreaterThan(0);
    expect(sources.metrics[0]).toContain('keyrotor_');
    expect(sources['keyrotor status'][0]).toContain('consumer');
    // Positive control: each key is found where it belongs, in the data of the Secret versions.
    const secretTexts = json(recorded('secrets'));
    for (const key of inSecrets) expect(findLeaks([key], { secret: secretTexts }).length).toBeGreaterThan(0);

    expect(describeLeaks(findLeaks([...generated, planted], sources))).toEqual([]);
    // Nothing had to be redacted anywhere: a key never reached a scrub (log, event note, status message).
    expect(redactedLines(sources)).toEqual([]);

    // Planted in the very texts just searched, every form of a generated key is found.
    const [sample = ''] = generated;
    for (const { form, needle } of keyForms(sample)) {
      const withLeak = {
        ...sources,
        'unscrubbed log': [...sources['unscrubbed log'], `{"msg":"${needle}"}`],
      };
      expect(findLeaks([sample], withLeak).map((leak) => `${leak.form}@${leak.source}`)).toContain(
        `${form}@unscrubbed log`,
      );
    }
  });
});

describe('the operator process', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let namespace: string;
  let removeNamespace: () => Promise<void> = async () => {};
  let secrets: ObjectRecorder | undefined;
  let operator: OperatorProcess | undefined;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'key-leaks-process'));
    secrets = await recordObjects(kc, `/api/v1/namespaces/${namespace}/secrets`);
  });
  afterAll(async () => {
    await operator?.kill();
    secrets?.stop();
    await removeNamespace();
  });

  it('writes no key to its standard output or standard error', async () => {
    const args = ['--namespaces', namespace, '--log-level', 'debug'];
    operator = await startOperatorProcess(await kubeconfigFile(kc, namespace), args);
    await createApiKey(kc, namespace, 'proc', { rotation: { gracePeriod: '1m' } });
    const first = await waitForReady(kc, namespace, 'proc');
    await requestRotation(kc, namespace, 'proc', 'one');
    await waitForReady(kc, namespace, 'proc', { keyIdNot: first.status?.keyId ?? '' });
    expect(
      secretValue(await core.readNamespacedSecret({ namespace, name: 'proc' }), 'previous-api-key'),
    ).toBeDefined();
    await patchApiKey(kc, namespace, 'proc', { spec: { revoked: true } });
    await waitForReady(kc, namespace, 'proc', { status: 'False', reason: 'Revoked' });
    await secrets?.caughtUp();
    expect(await operator.stop()).toBe(0);
    const { stdoutLines, stderrLines } = operator;
    operator = undefined;

    const keys = new Set(keysInSecrets(secrets?.versions ?? []));
    expect(keys.size).toBe(2);
    expect(stdoutLines.some((line) => line.includes('keyrotor running'))).toBe(true);
    expect(stdoutLines.some((line) => line.includes('"action":"revoked"'))).toBe(true);
    const leaks = findLeaks(keys, { stdout: stdoutLines, stderr: stderrLines });
    expect(describeLeaks(leaks)).toEqual([]);
    expect(redactedLines({ stdout: stdoutLines, stderr: stderrLines })).toEqual([]);
  });
});
