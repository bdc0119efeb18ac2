#!/usr/bin/env node
// keyrotor: the operator (`keyrotor run`) and the commands to operate keys. Also a kubectl plugin:
// installed on PATH as kubectl-keyrotor, it runs as `kubectl keyrotor ...`.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import {
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';

import { ANNOTATION_ROTATE, GROUP, PLURAL, VERSION } from './api/names.ts';
import type { ApiKey } from './api/types.ts';
import { checkKey, historyTable, statusRow, statusTable } from './cli/commands.ts';
import { parseDuration } from './schedule/duration.ts';

const USAGE = `Usage: keyrotor <command> [options]

Commands:
  run [operator options]     run the operator (keyrotor run --help)
  status [name]              keys and where they stand (-A for all namespaces)
  rotate <name>              rotate now, and wait until the new key is in the Secret
  revoke <name> --reason r   remove the key from its Secret at once
  history <name>             the current key and the last ten retired, with why
  check                      read a key on standard input; say whether its format and checksum are valid

Options:
  --kubeconfig <path>        kubeconfig file (default: KUBECONFIG, then ~/.kube/config)
  -n, --namespace <ns>       namespace (default: the kubeconfig context's, then "default")
  -A, --all-namespaces       status: every namespace
  -o, --output table|json    output format (default table)
  --timeout <duration>       rotate, revoke: how long to wait (default 2m)
  --reason <text>            revoke: why, for the event and the audit log`;

class CliError extends Error {}

function fail(error: unknown, what: string, namespace: string, server: string | undefined): never {
  const code = (error as { code?: number }).code;
  const body = (error as { body?: unknown }).body;
  const serverMessage =
    typeof body === 'string'
      ? ((): string => {
          try {
            return (JSON.parse(body) as { message?: string }).message ?? body;
          } catch {
            return body;
          }
        })()
      : '';
  if (code === 404 && /could not find the requested resource/.test(serverMessage)) {
    throw new CliError(
      'the ApiKey CRD is not installed in this cluster: kubectl apply --server-side -f crds/',
    );
  }
  if (code === 404) throw new CliError(`${what}: not found in namespace ${namespace}`);
  if (code === 403 || code === 401)
    throw new CliError(`not allowed to ${what} in namespace ${namespace}: ${serverMessage}`);
  if (code === undefined) {
    throw new CliError(`cannot reach the cluster at ${server ?? '(no server)'}: ${(error as Error).message}`);
  }
  throw new CliError(`${what}: HTTP ${code}: ${serverMessage}`);
}

interface Session {
  readonly kc: KubeConfig;
  readonly namespace: string;
  readonly allNamespaces: boolean;
  readonly reason: string | undefined;
  readonly timeout: string;
  print(value: unknown, text: string): void;
  read(name: string): Promise<ApiKey>;
  patch(name: string, body: object): Promise<void>;
  list(): Promise<ApiKey[]>;
  waitUntil(name: string, done: (apiKey: ApiKey) => boolean, what: string): Promise<ApiKey>;
}

type Command = (session: Session, name: string | undefined) => Promise<number>;

const need = (name: string | undefined, command: string): string => {
  if (name === undefined) throw new CliError(`${command} needs the name of an ApiKey`);
  return name;
};

async function lastEvents(session: Session): Promise<(apiKey: ApiKey) => string | undefined> {
  const events = await session.kc
    .makeApiClient(EventsV1Api)
    .listNamespacedEvent({ namespace: session.namespace })
    .then((list) => list.items)
    .catch(() => []);
  return (apiKey) =>
    events
      .filter((event) => event.regarding?.uid === apiKey.metadata.uid)
      .sort((a, b) => new Date(b.eventTime).getTime() - new Date(a.eventTime).getTime())
      .map((event) => `${event.reason ?? ''} ${new Date(event.eventTime).toISOString()}`)[0];
}

const COMMANDS: Record<string, Command> = {
  status: async (session, name) => {
    const apiKeys = name !== undefined ? [await session.read(name)] : await session.list();
    const lastEvent = await lastEvents(session);
    const rows = apiKeys.map((apiKey) => statusRow(apiKey, lastEvent(apiKey)));
    const empty = `No ApiKeys in ${session.allNamespaces ? 'any namespace' : `namespace ${session.namespace}`}.`;
    session.print(rows, rows.length === 0 ? empty : statusTable(rows, session.allNamespaces));
    return 0;
  },
  rotate: async (session, name) => {
    const target = need(name, 'rotate');
    const before = await session.read(target);
    if (
      before.spec.rotation?.gracePeriod !== undefined &&
      parseDuration(before.spec.rotation.gracePeriod) === 0
    ) {
      // The old key leaves the Secret at once, while Pods see the new one only after their kubelet syncs.
      process.stderr.write(
        `warning: ApiKey ${target} has spec.rotation.gracePeriod 0s: its current key stops working now, and workloads get 401s until their kubelet syncs the new key (about a minute); leave gracePeriod out for the 10m default\n`,
      );
    }
    const request = new Date().toISOString();
    await session.patch(target, { metadata: { annotations: { [ANNOTATION_ROTATE]: request } } });
    const after = await session.waitUntil(
      target,
      (apiKey) =>
        apiKey.status?.lastRotateRequest === request && apiKey.status.keyId !== before.status?.keyId,
      `ApiKey ${target} to rotate`,
    );
    const grace = after.status?.graceEndsAt
      ? `; the previous key works until ${after.status.graceEndsAt}`
      : '';
    session.print(
      {
        name: target,
        previousKeyId: before.status?.keyId,
        keyId: after.status?.keyId,
        graceEndsAt: after.status?.graceEndsAt,
      },
      `rotated ApiKey ${target}: key ${before.status?.keyId ?? '-'} replaced by ${after.status?.keyId ?? '-'}${grace}`,
    );
    return 0;
  },
  revoke: async (session, name) => {
    const target = need(name, 'revoke');
    await session.patch(target, {
      spec: { revoked: true, ...(session.reason ? { revocationReason: session.reason } : {}) },
    });
    const revoked = (apiKey: ApiKey) =>
      apiKey.status?.conditions?.some(
        (condition) => condition.type === 'Ready' && condition.reason === 'Revoked',
      ) === true;
    await session.waitUntil(target, revoked, `ApiKey ${target} to be revoked`);
    session.print(
      { name: target, revoked: true },
      `revoked ApiKey ${target}: its Secret holds no key; set spec.revoked to false to issue a new one`,
    );
    return 0;
  },
  history: async (session, name) => {
    const apiKey = await session.read(need(name, 'history'));
    session.print(
      { current: apiKey.status?.keyId, history: apiKey.status?.history ?? [] },
      historyTable(apiKey),
    );
    return 0;
  },
};

function session(values: Record<string, string | boolean | undefined>): Session {
  const kc = new KubeConfig();
  if (typeof values.kubeconfig === 'string') kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const server = kc.getCurrentCluster()?.server;
  const namespace =
    (typeof values.namespace === 'string' ? values.namespace : undefined) ??
    kc.getContextObject(kc.getCurrentContext())?.namespace ??
    'default';
  const custom = kc.makeApiClient(CustomObjectsApi);
  const json = values.output === 'json';
  const timeout = typeof values.timeout === 'string' ? values.timeout : '2m';
  const timeoutMs = parseDuration(timeout);
  if (timeoutMs === undefined)
    throw new CliError(`--timeout: "${timeout}" is not a duration such as 30s or 2m`);
  const base = { group: GROUP, version: VERSION, plural: PLURAL };
  const self: Session = {
    kc,
    namespace,
    allNamespaces: values['all-namespaces'] === true,
    reason: typeof values.reason === 'string' ? values.reason : undefined,
    timeout,
    print: (value, text) => {
      process.stdout.write(`${json ? JSON.stringify(value, null, 2) : text}\n`);
    },
    read: async (name) =>
      (await custom
        .getNamespacedCustomObject({ ...base, namespace, name })
        .catch((error: unknown) => fail(error, `get ApiKey ${name}`, namespace, server))) as ApiKey,
    patch: async (name, body) => {
      const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
      await custom
        .patchNamespacedCustomObject({ ...base, namespace, name, body }, mergePatch)
        .catch((error: unknown) => fail(error, `patch ApiKey ${name}`, namespace, server));
    },
    list: async () => {
      const listed = self.allNamespaces
        ? custom.listClusterCustomObject(base)
        : custom.listNamespacedCustomObject({ ...base, namespace });
      return (
        (await listed.catch((error: unknown) => fail(error, 'list ApiKeys', namespace, server))) as {
          items: ApiKey[];
        }
      ).items;
    },
    waitUntil: async (name, done, what) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const apiKey = await self.read(name);
        if (done(apiKey)) return apiKey;
        if (Date.now() > deadline) {
          const ready = apiKey.status?.conditions?.find((condition) => condition.type === 'Ready');
          throw new CliError(
            `timed out after ${timeout} waiting for ${what}; Ready is ${ready?.status ?? 'Unknown'} (${ready?.reason ?? 'no reason'}): ${ready?.message ?? ''}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
  };
  return self;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'run') {
    process.argv.splice(2, 1);
    await import('./main.ts');
    return 0;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      output: { type: 'string', short: 'o', default: 'table' },
      timeout: { type: 'string', default: '2m' },
      reason: { type: 'string' },
    },
  });
  if (values.output !== 'table' && values.output !== 'json') {
    throw new CliError(`--output must be table or json, not ${values.output}`);
  }
  if (command === 'check') {
    const result = checkKey(readFileSync(0, 'utf8'));
    process.stdout.write(`${values.output === 'json' ? JSON.stringify(result, null, 2) : result.message}\n`);
    return result.valid ? 0 : 1;
  }
  const run = COMMANDS[command];
  if (run === undefined) throw new CliError(`unknown command "${command}"\n\n${USAGE}`);
  return run(session(values), positionals[0]);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`keyrotor: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
