// Looks for keys where they must never be: every form a key can take in text (itself, base64 at any
// alignment, hex, its first and last 12 characters), in any text a test collects. Also records every
// key the operator's generator makes, and every version of the objects of a kind in a namespace.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { Watch, type KubeConfig, type V1Secret } from '@kubernetes/client-node';

import { SECRET_TYPE, VERIFIER_SECRET_TYPE } from '../../operator/src/api/names.ts';
import { generateKey, keyId, parseKey, type KeyOptions } from '../../operator/src/keys/format.ts';
import { REDACTED } from '../../operator/src/observability/logger.ts';
import { VERIFIER_FILE } from '../../operator/src/verify/document.ts';
import { rawRequest } from './kube.ts';
import { secretValue } from './operator.ts';
import { waitFor } from './wait.ts';

export interface KeyForm {
  readonly form: string;
  readonly needle: string;
}

/**
 * Base64 of `key` preceded by 0, 1 or 2 other bytes, without the characters that depend on its
 * neighbours: the key's own part of any base64 text that holds it (a Secret's data, a JSON blob).
 */
function base64Needles(key: string, encoding: 'base64' | 'base64url'): string[] {
  return [0, 1, 2].map((lead) => {
    const text = Buffer.from(`${'x'.repeat(lead)}${key}`).toString(encoding);
    const start = lead === 0 ? 0 : 4;
    const whole = Math.floor((lead + key.length) / 3) * 4; // characters of complete groups
    return text.slice(start, whole);
  });
}

/** The part after `<prefix>_<env tag>_`: every key begins with the same few characters. */
export function randomPart(key: string): string {
  if (!parseKey(key).ok) throw new Error(`not a keyrotor key (id ${keyId(key)})`);
  return key.slice(key.indexOf('_', key.indexOf('_') + 1) + 1);
}

/** Every form of `key` that is looked for. */
export function keyForms(key: string): KeyForm[] {
  const hex = Buffer.from(key).toString('hex');
  return [
    { form: 'plain', needle: key },
    ...base64Needles(key, 'base64').map((needle, lead) => ({ form: `base64 (offset ${lead})`, needle })),
    ...base64Needles(key, 'base64url').map((needle, lead) => ({
      form: `base64url (offset ${lead})`,
      needle,
    })),
    { form: 'hex', needle: hex },
    { form: 'HEX', needle: hex.toUpperCase() },
    { form: 'first 12 (after prefix and tag)', needle: randomPart(key).slice(0, 12) },
    { form: 'last 12', needle: key.slice(-12) },
  ];
}

export interface Leak {
  /** The key's public id: reports never show the key. */
  readonly keyId: string;
  readonly form: string;
  readonly source: string;
  /** Which text of the source (a line, an object version), from 0. */
  readonly index: number;
}

/** Where each form of each key occurs in `sources` (a name to its texts: lines, serialized objects). */
export function findLeaks(
  keys: Iterable<string>,
  sources: Readonly<Record<string, readonly string[]>>,
): Leak[] {
  const leaks: Leak[] = [];
  const needles = [...new Set(keys)].flatMap((key) => keyForms(key).map((form) => ({ key, ...form })));
  for (const [source, texts] of Object.entries(sources))
    texts.forEach((text, index) => {
      for (const { key, form, needle } of needles)
        if (text.includes(needle)) leaks.push({ keyId: keyId(key), form, source, index });
    });
  return leaks;
}

/** Leaks as lines a failing assertion shows: key id, form, where. */
export const describeLeaks = (leaks: readonly Leak[]) =>
  leaks.map(({ keyId: id, form, source, index }) => `key ${id} (${form}) in ${source}[${index}]`);

/** The lines of each source that say something was redacted: a key got as far as a scrub. */
export function redactedLines(sources: Readonly<Record<string, readonly string[]>>): string[] {
  return Object.entries(sources).flatMap(([source, texts]) =>
    texts.flatMap((text, index) => (text.includes(REDACTED) ? [`${REDACTED} in ${source}[${index}]`] : [])),
  );
}

/** Every key that versions of key Secrets hold (api-key, previous-api-key). */
export const keysInSecrets = (secrets: readonly unknown[]): string[] =>
  (secrets as V1Secret[])
    .filter((secret) => secret.type === SECRET_TYPE)
    .flatMap((secret) => [secretValue(secret, 'api-key'), secretValue(secret, 'previous-api-key')])
    .filter((key): key is string => key !== undefined);

/** The verifier document of each version of a verifier Secret, decoded. */
export const verifierDocuments = (secrets: readonly unknown[]): string[] =>
  (secrets as V1Secret[])
    .filter((secret) => secret.type === VERIFIER_SECRET_TYPE && secret.data?.[VERIFIER_FILE] !== undefined)
    .map((secret) => secretValue(secret, VERIFIER_FILE) ?? '');

const cli = path.resolve(import.meta.dirname, '../../operator/src/keyrotor.ts');

/** The keyrotor CLI as a user runs it: its exit code, and standard output and error together. */
export function runKeyrotor(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : 1, output: `${stdout}\n${stderr}` });
    });
  });
}

/** A kubeconfig file for a child process (the CLI, the operator). */
export async function kubeconfigFile(kc: KubeConfig, namespace: string): Promise<string> {
  const file = path.join(os.tmpdir(), `${namespace}.kubeconfig`);
  await writeFile(file, kc.exportConfig());
  return file;
}

/** The operator's key generator, with every key it made kept. */
export function recordingGenerator(): { generateKey: (options: KeyOptions) => string; keys: string[] } {
  const keys: string[] = [];
  return {
    keys,
    generateKey: (options) => {
      const key = generateKey(options);
      keys.push(key);
      return key;
    },
  };
}

interface Listed {
  readonly metadata?: { resourceVersion?: string };
  readonly items: { metadata?: { uid?: string; resourceVersion?: string } }[];
}

export interface ObjectRecorder {
  /** Every version of every object seen, as it arrived (watch events in order). */
  readonly versions: { readonly metadata?: { uid?: string; resourceVersion?: string } }[];
  /** Waits until every object the API server lists now has been seen at its current version. */
  caughtUp(): Promise<void>;
  stop(): void;
}

/**
 * Keeps every version of the objects at `path` (a collection, e.g. /api/v1/namespaces/x/events): a
 * list, then a watch from the list's resourceVersion, resumed from the last version seen if it ends.
 */
export async function recordObjects(kc: KubeConfig, path: string): Promise<ObjectRecorder> {
  const list = async (): Promise<Listed> => {
    const response = await rawRequest(kc, 'GET', path);
    if (response.status !== 200) throw new Error(`list ${path}: HTTP ${response.status}`);
    return JSON.parse(response.body) as Listed;
  };
  const initial = await list();
  const versions: ObjectRecorder['versions'][number][] = [...initial.items];
  let resourceVersion = initial.metadata?.resourceVersion ?? '';
  let stopped = false;
  let abort: AbortController | undefined;
  let failure: unknown;
  const watch = new Watch(kc);
  const open = async (): Promise<void> => {
    abort = await watch.watch(
      path,
      { resourceVersion, allowWatchBookmarks: true },
      (phase, object: ObjectRecorder['versions'][number]) => {
        if (object.metadata?.resourceVersion !== undefined) resourceVersion = object.metadata.resourceVersion;
        if (phase !== 'BOOKMARK') versions.push(object);
      },
      (error: unknown) => {
        if (stopped) return;
        if (error !== null && error !== undefined) failure = error;
        else open().catch((reopenError: unknown) => (failure = reopenError));
      },
    );
  };
  await open();
  return {
    versions,
    caughtUp: async () => {
      const current = await list();
      await waitFor(
        () => {
          if (failure !== undefined) throw new Error(`the watch of ${path} failed`);
          const seen = new Set(
            versions.map((object) => `${object.metadata?.uid}@${object.metadata?.resourceVersion}`),
          );
          return current.items.every((item) =>
            seen.has(`${item.metadata?.uid}@${item.metadata?.resourceVersion}`),
          )
            ? true
            : undefined;
        },
        { description: `the watch of ${path} to see every current object` },
      );
    },
    stop: () => {
      stopped = true;
      abort?.abort();
    },
  };
}
