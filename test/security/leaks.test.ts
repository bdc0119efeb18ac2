// Adversarial: an admission policy on Secrets whose message echoes the object's data (as a webhook or a
// ValidatingAdmissionPolicy messageExpression can) refuses keyrotor's writes. The server's answer then
// holds the key: raw, base64 and hex. None of it may reach what others read: the ApiKey's status (any
// tenant who can `get apikeys`), its Events, and the operator's log.
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseKey } from '../../operator/src/keys/format.ts';
import { adminKubeConfig, createTestNamespace, failureStatus } from '../support/kube.ts';
import {
  createApiKey,
  eventsFor,
  readApiKey,
  requestRotation,
  secretValue,
  startOperator,
  waitForEvent,
  waitForReady,
  type TestOperator,
} from '../support/operator.ts';
import { createTenant, type Tenant } from '../support/tenant.ts';
import { waitFor } from '../support/wait.ts';

/**
 * The policy's CEL sees a Secret's data as the base64 text of the JSON. The API server's CEL has no
 * base64 or hex functions: decode the base64 and write the hex from character codes.
 */
const ASCII_FROM = 48; // '0'; a key holds only [0-9A-Za-z_], all within '0'..'z'
const ASCII = Array.from({ length: 'z'.charCodeAt(0) - ASCII_FROM + 1 }, (_, i) =>
  String.fromCharCode(ASCII_FROM + i),
).join('');
const celString = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const BASE64 = celString('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const HEX = celString('0123456789abcdef');
/** Longest key echoed; the default key (prefix kr, 256 bits) has 57 characters. */
const MAX_CHARS = 72;

/** The policy's variables: the key the object holds (the current one, `previous-api-key` during a rotation). */
function echoVariables() {
  const sextet = (index: string) => `variables.sextets[${index}]`;
  const byte = (index: string) => `variables.bytes[${index}]`;
  const group = '4 * (j / 3)';
  return [
    {
      name: 'base64',
      expression:
        "!has(object.data) ? '' : 'previous-api-key' in object.data ? string(object.data['previous-api-key']) : " +
        "'api-key' in object.data ? string(object.data['api-key']) : ''",
    },
    {
      name: 'length',
      expression:
        "size(variables.base64) / 4 * 3 - (variables.base64.endsWith('==') ? 2 : variables.base64.endsWith('=') ? 1 : 0)",
    },
    {
      name: 'sextets',
      expression: `lists.range(${(MAX_CHARS / 3) * 4}).map(i, i < size(variables.base64) && variables.base64.charAt(i) != '=' ? ${BASE64}.indexOf(variables.base64.charAt(i)) : 0)`,
    },
    {
      name: 'bytes',
      expression:
        `lists.range(${MAX_CHARS}).map(j, j % 3 == 0 ? ${sextet(group)} * 4 + ${sextet(`${group} + 1`)} / 16 : ` +
        `j % 3 == 1 ? ${sextet(`${group} + 1`)} % 16 * 16 + ${sextet(`${group} + 2`)} / 4 : ` +
        `${sextet(`${group} + 2`)} % 4 * 64 + ${sextet(`${group} + 3`)})`,
    },
    {
      name: 'key',
      expression: `lists.range(${MAX_CHARS}).filter(j, j < variables.length).map(j, ${celString(ASCII)}.charAt(${byte('j')} - ${ASCII_FROM})).join('')`,
    },
    {
      name: 'hex',
      expression: `lists.range(${MAX_CHARS}).filter(j, j < variables.length).map(j, ${HEX}.charAt(${byte('j')} / 16) + ${HEX}.charAt(${byte('j')} % 16)).join('')`,
    },
  ];
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const hex = (text: string) => Buffer.from(text).toString('hex');

describe('key material in refusals that echo the Secret', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  let namespace: string;
  let removeNamespace: () => Promise<void>;
  let tenant: Tenant;
  let operator: TestOperator | undefined;
  let policy: string;

  beforeAll(async () => {
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'leaks'));
    tenant = await createTenant(kc, namespace);
    policy = `keyrotor-test-echo-${namespace}`;
  });
  afterAll(async () => {
    await operator?.stop();
    await admission.deleteValidatingAdmissionPolicyBinding({ name: policy }).catch(() => undefined);
    await admission.deleteValidatingAdmissionPolicy({ name: policy }).catch(() => undefined);
    await removeNamespace();
  });

  /** Refuses every write of a Secret in this namespace but the tenant's, echoing the key it holds. */
  async function bindEchoingPolicy() {
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: policy },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            // Only this namespace: other test files share the control plane.
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
            resourceRules: [
              {
                apiGroups: [''],
                apiVersions: ['v1'],
                resources: ['secrets'],
                operations: ['CREATE', 'UPDATE'],
              },
            ],
          },
          matchConditions: [{ name: 'this-namespace', expression: `request.namespace == '${namespace}'` }],
          variables: echoVariables(),
          validations: [
            {
              expression: `request.userInfo.username == 'system:serviceaccount:${namespace}:${tenant.name}'`,
              reason: 'Forbidden',
              message: 'denied',
              messageExpression:
                `'denied: {"data":{"api-key":"' + variables.base64 + '"}} hex=' + variables.hex + ` +
                `' env=API_KEY_' + variables.key + '_old'`,
            },
          ],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: { metadata: { name: policy }, spec: { policyName: policy, validationActions: ['Deny'] } },
    });
  }

  it('keeps the key, its base64 and its hex out of the status and Events a tenant reads, and out of the log', async () => {
    operator = await startOperator(kc, namespace);
    await createApiKey(kc, namespace, 'bot', { secretTemplate: { labels: { team: 'quant' } } });
    const ready = await waitForReady(kc, namespace, 'bot');
    const key = secretValue(await core.readNamespacedSecret({ namespace, name: 'bot' }), 'api-key') ?? '';
    expect(parseKey(key).ok).toBe(true);
    expect(key.length).toBeLessThanOrEqual(MAX_CHARS);
    const forms = {
      raw: key,
      base64: b64(key),
      'unpadded base64': b64(key).replace(/=+$/, ''),
      hex: hex(key),
    };

    await bindEchoingPolicy();
    // In force within moments. The refusal a dry-run write gets shows what the policy echoes: the key in
    // each form (checked as booleans: the test never prints the key).
    const refusal = await waitFor(
      async () => {
        const { code, body } = await failureStatus(
          core.patchNamespacedSecret(
            { namespace, name: 'bot', dryRun: 'All', body: { metadata: { labels: { probe: 'x' } } } },
            mergePatch,
          ),
        );
        return code === 403 ? body : undefined;
      },
      { description: 'the echoing policy to refuse Secret writes in the namespace' },
    );
    expect(refusal.includes(b64(key))).toBe(true);
    expect(refusal.includes(hex(key))).toBe(true);
    expect(refusal.includes(`API_KEY_${key}_old`)).toBe(true);

    // The tenant edits a label: keyrotor's restore is refused (Ready=False, SecretRejected, in status).
    await tenant.kc
      .makeApiClient(CoreV1Api)
      .patchNamespacedSecret(
        { namespace, name: 'bot', body: { metadata: { labels: { team: 'other' } } } },
        mergePatch,
      );
    const rejected = await waitForReady(tenant.kc, namespace, 'bot', {
      status: 'False',
      reason: 'SecretRejected',
    });
    const message =
      rejected.status?.conditions?.find((condition) => condition.type === 'Ready')?.message ?? '';
    expect(message).toContain(`apply Secret ${namespace}/bot: HTTP 403 Forbidden`);
    // A rotation is refused too (a RotationFailed Warning); the old key stays.
    await requestRotation(kc, namespace, 'bot', 'leak-1');
    await waitForEvent(tenant.kc, namespace, 'bot', 'RotationFailed');
    await waitFor(
      () =>
        operator?.logLines.some((line) => line.includes('"msg":"reconcile failed; will retry"')) || undefined,
      { description: 'the operator to log the refused write' },
    );
    await waitFor(
      async () =>
        ((await readApiKey(tenant.kc, namespace, 'bot')).status?.failedAttempts ?? 0) >= 2 || undefined,
      { description: 'both refusals recorded in status' },
    );
    expect((await readApiKey(tenant.kc, namespace, 'bot')).status?.keyId).toBe(ready.status?.keyId);

    // What the tenant reads (`kubectl get ak bot -o yaml`, `kubectl get events`), and every log line.
    const apiKey = JSON.stringify(await readApiKey(tenant.kc, namespace, 'bot'));
    const events = await eventsFor(tenant.kc, namespace, 'bot');
    const lines = operator.logLines;
    expect(events.some((event) => event.reason === 'RotationFailed')).toBe(true);
    expect(lines.length).toBeGreaterThan(0);
    // Soft, and named by channel and form (never by value): a failure lists every leak, not only the first.
    for (const [form, text] of Object.entries(forms)) {
      expect.soft(apiKey.includes(text), `ApiKey status holds the key as ${form}`).toBe(false);
      expect
        .soft(
          events.some((event) => event.note.includes(text)),
          `an Event holds the key as ${form}`,
        )
        .toBe(false);
      expect
        .soft(
          lines.some((line) => line.includes(text)),
          `a log line holds the key as ${form}`,
        )
        .toBe(false);
    }
    // Nor anything else the server echoed: its message text stays out of status and Events.
    expect.soft(apiKey.includes('denied: '), 'ApiKey status holds the server message').toBe(false);
    expect
      .soft(
        events.some((event) => event.note.includes('denied: ')),
        'an Event holds the server message',
      )
      .toBe(false);
  });
});
