import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';

import {
  API_VERSION,
  FIELD_MANAGER,
  GROUP,
  ISSUER_KIND,
  ISSUER_PLURAL,
  KIND,
  PLURAL,
  VERSION,
} from '../api/names.ts';
import type { ApiKey, ApiKeyIssuer, ApiKeyIssuerStatus, ApiKeyStatus } from '../api/types.ts';
import type { SecretLike, SecretManifest } from '../reconcile/secret.ts';
import { makeClient, type ClientOptions } from './client.ts';
import { serverSideApply } from './condition-writes.ts';
import { KubeError, call, isNotFound } from './errors.ts';

/** The writes (and the one live read) keyrotor makes; every failure is a KubeError naming the call. */
export class KubeWriter {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;

  constructor(kc: KubeConfig, options: ClientOptions = {}) {
    this.#core = makeClient(kc, CoreV1Api, options);
    this.#custom = makeClient(kc, CustomObjectsApi, options);
  }

  /** Reads a Secret from the API server (not the cache): for Secrets keyrotor does not label. */
  async readSecret(namespace: string, name: string): Promise<SecretLike | undefined> {
    try {
      return await call(`get Secret ${namespace}/${name}`, () =>
        this.#core.readNamespacedSecret({ namespace, name }),
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Server-side apply as field manager keyrotor; a resourceVersion in the manifest is a precondition. */
  async applySecret(manifest: SecretManifest): Promise<SecretLike> {
    const { name, namespace } = manifest.metadata;
    return call(`apply Secret ${namespace}/${name}`, () =>
      this.#core.patchNamespacedSecret(
        { name, namespace, body: manifest, fieldManager: FIELD_MANAGER, force: true },
        serverSideApply(),
      ),
    );
  }

  /**
   * Removes fields ("data.<key>", "annotations.<name>") that server-side apply would keep because
   * another manager owns them: a JSON patch that first tests the observed resourceVersion.
   */
  async stripSecret(
    namespace: string,
    name: string,
    fields: readonly string[],
    resourceVersion: string | undefined,
  ): Promise<SecretLike> {
    const pointer = (field: string) => {
      const [part = '', ...rest] = field.split('.');
      const key = rest.join('.').replaceAll('~', '~0').replaceAll('/', '~1');
      return `/${part === 'data' ? 'data' : 'metadata/annotations'}/${key}`;
    };
    const body = [
      ...(resourceVersion === undefined
        ? []
        : [{ op: 'test', path: '/metadata/resourceVersion', value: resourceVersion }]),
      ...fields.map((field) => ({ op: 'remove', path: pointer(field) })),
    ];
    const what = `strip Secret ${namespace}/${name}`;
    try {
      return await call(what, () =>
        this.#core.patchNamespacedSecret(
          { name, namespace, body, fieldManager: FIELD_MANAGER },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
        ),
      );
    } catch (error) {
      // A failed test (another resourceVersion) or a field already gone: the Secret changed since it
      // was observed, which is a conflict: decide again on fresh state.
      if (error instanceof KubeError && error.status === 422)
        throw new KubeError(what, 409, 'Conflict', 'the Secret changed since it was observed');
      throw error;
    }
  }

  /** Deletes a Secret only if it is still the object (uid) that was observed. */
  async deleteSecret(namespace: string, name: string, uid: string): Promise<void> {
    await call(`delete Secret ${namespace}/${name}`, () =>
      this.#core.deleteNamespacedSecret({ namespace, name, body: { preconditions: { uid } } }),
    );
  }

  /** Server-side apply of the whole status: fields keyrotor stops setting are removed. */
  async applyStatus(apiKey: ApiKey, status: ApiKeyStatus): Promise<ApiKey> {
    return this.#applyStatus(apiKey, KIND, PLURAL, status);
  }

  async applyIssuerStatus(issuer: ApiKeyIssuer, status: ApiKeyIssuerStatus): Promise<ApiKeyIssuer> {
    return this.#applyStatus(issuer, ISSUER_KIND, ISSUER_PLURAL, status);
  }

  async #applyStatus<T extends Pick<ApiKey, 'metadata'>>(
    object: T,
    kind: string,
    plural: string,
    status: unknown,
  ): Promise<T> {
    const { name, namespace } = object.metadata;
    return call(`apply status of ${kind} ${namespace}/${name}`, async () => {
      const result: unknown = await this.#custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural,
          name,
          body: { apiVersion: API_VERSION, kind, metadata: { name, namespace }, status },
          fieldManager: FIELD_MANAGER,
          force: true,
        },
        serverSideApply(),
      );
      return result as T;
    });
  }
}
