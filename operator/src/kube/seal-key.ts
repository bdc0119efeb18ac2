import { randomBytes } from 'node:crypto';

import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

import { FIELD_MANAGER, MANAGED_BY_VALUE } from '../api/names.ts';
import { MIN_SEAL_KEY_BYTES } from '../reconcile/seal.ts';
import { makeClient, type ClientOptions } from './client.ts';
import { call, isConflict, isNotFound, KubeError } from './errors.ts';

/** The type of the Secret that holds keyrotor's seal key (never a key Secret: not cached by the informer). */
export const SEAL_KEY_SECRET_TYPE = 'keyrotor.dev/seal-key';
const DATA_SEAL_KEY = 'seal-key';
export const DEFAULT_SEAL_SECRET_NAME = 'keyrotor-seal';

export interface SealSecretRef {
  readonly namespace: string;
  readonly name: string;
}

/**
 * keyrotor's seal key, from a Secret in its own namespace (where tenants have no access), made from
 * the CSPRNG the first time: every replica reads the same one, a create race is settled by the API
 * server (409, then read). Deliberately not labelled managed-by=keyrotor: the key-Secret informer
 * never caches it, and it is never mistaken for an ApiKey's Secret.
 */
export async function loadSealKey(
  kc: KubeConfig,
  ref: SealSecretRef,
  options: ClientOptions = {},
  deadlineMs = 60_000,
): Promise<Uint8Array> {
  // At start-up the API server may throttle (429), be restarting, or not yet authorize a fresh
  // install's RBAC: try again with backoff until the deadline, then fail with the last error.
  // Monotonic: a wall clock step must not stretch or cut the wait.
  const giveUpAt = performance.now() + deadlineMs;
  for (let delayMs = 200; ; delayMs = Math.min(delayMs * 2, 5_000)) {
    try {
      return await readOrCreate(kc, ref, options);
    } catch (error) {
      if (performance.now() + delayMs > giveUpAt) throw error;
      const wait = error instanceof KubeError ? Math.max(delayMs, error.retryAfterMs ?? 0) : delayMs;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

async function readOrCreate(kc: KubeConfig, ref: SealSecretRef, options: ClientOptions): Promise<Uint8Array> {
  const core = makeClient(kc, CoreV1Api, options);
  const where = `Secret ${ref.namespace}/${ref.name}`;
  const read = async (): Promise<Uint8Array | undefined> => {
    try {
      const secret = await call(`read seal key ${where}`, () =>
        core.readNamespacedSecret({ namespace: ref.namespace, name: ref.name }),
      );
      if (secret.type !== SEAL_KEY_SECRET_TYPE) {
        throw new KubeError(
          `read seal key ${where}`,
          undefined,
          'InvalidSealKey',
          `its type is ${secret.type ?? '(none)'}, not ${SEAL_KEY_SECRET_TYPE}: keyrotor made no seal key there`,
        );
      }
      const data = secret.data?.[DATA_SEAL_KEY];
      const key = data === undefined ? undefined : Buffer.from(data, 'base64');
      if (key === undefined || key.length < MIN_SEAL_KEY_BYTES) {
        throw new KubeError(
          `read seal key ${where}`,
          undefined,
          'InvalidSealKey',
          `data.${DATA_SEAL_KEY} must hold at least ${MIN_SEAL_KEY_BYTES} bytes`,
        );
      }
      return key;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  };
  const existing = await read();
  if (existing !== undefined) return existing;
  try {
    await call(`create seal key ${where}`, () =>
      core.createNamespacedSecret({
        namespace: ref.namespace,
        fieldManager: FIELD_MANAGER,
        body: {
          metadata: {
            name: ref.name,
            labels: { 'app.kubernetes.io/part-of': MANAGED_BY_VALUE },
          },
          type: SEAL_KEY_SECRET_TYPE,
          immutable: true,
          data: { [DATA_SEAL_KEY]: randomBytes(32).toString('base64') },
        },
      }),
    );
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
  const created = await read();
  if (created === undefined) {
    throw new KubeError(`read seal key ${where}`, 404, 'NotFound', 'created, then not found');
  }
  return created;
}
