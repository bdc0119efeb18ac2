import {
  AppsV1Api,
  CustomObjectsApi,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';

import { ROLLOUT_GROUP, ROLLOUT_PLURAL, ROLLOUT_VERSION } from '../api/names.ts';
import { makeClient } from '../kube/client.ts';
import { errorFields } from '../kube/errors.ts';
import { ResilientInformer, type Change, type ListPage } from '../kube/informer.ts';
import { customObjectSource } from '../kube/informer-sources.ts';
import { WorkloadsWriter } from '../kube/workloads-writes.ts';
import {
  workloadView,
  type KindAvailability,
  type KindedWorkload,
  type WorkloadLike,
  type WorkloadView,
} from '../reconcile/restart-targets.ts';
import { RESTART_KINDS, type RestartKind, type RestartTarget } from '../reconcile/spec.ts';
import type { ConcernOptions } from './concern.ts';

export type WorkloadObject = KubernetesObject & WorkloadLike & WorkloadView;
type Informers = ResilientInformer<WorkloadObject>[];

/** While a kind cannot be listed, it is looked for again this often (a CRD or a grant may arrive). */
export const WORKLOAD_PROBE_MS = 60_000;

export interface WorkloadCachesOptions extends Pick<
  ConcernOptions,
  'kc' | 'logger' | 'namespaces' | 'clientOptions' | 'watchOptions'
> {
  /** A workload of this kind was added, changed or deleted (only enqueues work). */
  readonly onChange: (namespace: string, kind: RestartKind, name: string) => void;
  /** Whether a kind can be listed changed (its CRD installed or removed, a grant given or taken). */
  readonly onAvailabilityChanged: (kind: RestartKind) => void;
}

const where = (namespace: string | undefined) => (namespace === undefined ? '' : `/namespaces/${namespace}`);

/**
 * The workloads keyrotor can restart, cached small (reconcile/restart-targets.ts workloadView). Each
 * kind is probed (a list of one) before it is watched, never assumed: Argo Rollouts' CRD may not be
 * installed (404), and without features.workloadRestarts keyrotor may list no workload at all (403).
 * A kind that cannot be listed is asked for again every minute and at each resync, and its targets are
 * reported missing with the reason; nothing waits on it, so keyrotor never hangs or crashes for it.
 */
export class WorkloadCaches {
  readonly #options: WorkloadCachesOptions;
  readonly #writer: WorkloadsWriter;
  readonly #informers = new Map<RestartKind, Informers>();
  /** Per kind: undefined until its first probe answered. */
  readonly #availability = new Map<RestartKind, KindAvailability>();
  #probing: Promise<void> | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #stopped = true;

  constructor(options: WorkloadCachesOptions) {
    this.#options = options;
    this.#writer = new WorkloadsWriter(options.kc, options.clientOptions);
  }

  #scopes(): (string | undefined)[] {
    return this.#options.namespaces.length === 0 ? [undefined] : [...this.#options.namespaces];
  }

  /** What every workload informer shares: the small cached view, and changes only enqueue work. */
  #common(kind: RestartKind, namespace: string | undefined) {
    const { kc, logger, watchOptions, onChange } = this.#options;
    return {
      name: `${kind.toLowerCase()}s${namespace ? ` in ${namespace}` : ''}`,
      kc,
      logger,
      ...watchOptions,
      // Only names, the reload annotation, and the Secrets a reload-annotated pod template uses.
      transform: workloadView<WorkloadObject>,
      onChange: (object: WorkloadObject, _change: Change) => {
        const { namespace: objectNamespace, name } = object.metadata;
        if (objectNamespace && name) onChange(objectNamespace, kind, name);
      },
    };
  }

  /** One informer per scope. Each list call sits inside its informer: test/unit/rbac-scanner.ts reads the watch there. */
  #makeInformers(kind: RestartKind): Informers {
    if (kind === 'Rollout') return this.#scopes().map((namespace) => this.#rolloutInformer(namespace));
    const apps = makeClient(this.#options.kc, AppsV1Api, this.#options.clientOptions);
    const plural =
      kind === 'Deployment' ? 'deployments' : kind === 'StatefulSet' ? 'statefulsets' : 'daemonsets';
    return this.#scopes().map(
      (namespace) =>
        new ResilientInformer<WorkloadObject>({
          ...this.#common(kind, namespace),
          path: `/apis/apps/v1${where(namespace)}/${plural}`,
          list: async (page: ListPage) =>
            (plural === 'deployments'
              ? namespace === undefined
                ? await apps.listDeploymentForAllNamespaces(page)
                : await apps.listNamespacedDeployment({ namespace, ...page })
              : plural === 'statefulsets'
                ? namespace === undefined
                  ? await apps.listStatefulSetForAllNamespaces(page)
                  : await apps.listNamespacedStatefulSet({ namespace, ...page })
                : namespace === undefined
                  ? await apps.listDaemonSetForAllNamespaces(page)
                  : await apps.listNamespacedDaemonSet({
                      namespace,
                      ...page,
                    })) as KubernetesListObject<WorkloadObject>,
        }),
    );
  }

  #rolloutInformer(namespace: string | undefined): ResilientInformer<WorkloadObject> {
    const custom = makeClient(this.#options.kc, CustomObjectsApi, this.#options.clientOptions);
    return new ResilientInformer<WorkloadObject>({
      ...this.#common('Rollout', namespace),
      ...customObjectSource<WorkloadObject>(
        custom,
        { group: ROLLOUT_GROUP, version: ROLLOUT_VERSION, plural: ROLLOUT_PLURAL },
        namespace,
        { paged: true },
      ),
    });
  }

  /** Probes every kind and watches those that can be listed, each synced before this resolves. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.probe();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#probeTimer);
    await this.#probing;
    const informers = [...this.#informers.values()].flat();
    this.#informers.clear();
    await Promise.all(informers.map((informer) => informer.stop()));
  }

  /** True when every kind that is watched has synced (readiness). */
  get synced(): boolean {
    return [...this.#informers.values()].flat().every((informer) => informer.synced);
  }

  async relist(): Promise<void> {
    await Promise.all([...this.#informers.values()].flat().map((informer) => informer.relist()));
  }

  /** Asks again which kinds can be listed (one probe at a time); watches those that now can. */
  async probe(): Promise<void> {
    this.#probing ??= this.#probeAll().finally(() => {
      this.#probing = undefined;
    });
    await this.#probing;
  }

  async #probeAll(): Promise<void> {
    clearTimeout(this.#probeTimer);
    await Promise.all(RESTART_KINDS.map((kind) => this.#probeKind(kind)));
    const waiting = RESTART_KINDS.some((kind) => this.#availability.get(kind) !== 'available');
    if (waiting && !this.#stopped) {
      this.#probeTimer = setTimeout(() => {
        void this.probe();
      }, WORKLOAD_PROBE_MS);
      this.#probeTimer.unref();
    }
  }

  async #probeKind(kind: RestartKind): Promise<void> {
    let availability: KindAvailability;
    try {
      // Every watched namespace: an informer is made for each, and one that cannot list would never sync.
      const namespaces = this.#options.namespaces.length === 0 ? [undefined] : this.#options.namespaces;
      const answers = await Promise.all(
        namespaces.map((namespace) => this.#writer.availability(kind, namespace)),
      );
      availability =
        answers.find((answer) => answer === 'forbidden') ??
        answers.find((answer) => answer === 'not-installed') ??
        'available';
    } catch (error) {
      this.#options.logger.warn(
        { error: errorFields(error), kind },
        'could not tell whether workloads can be listed',
      );
      return;
    }
    const watched = this.#informers.get(kind);
    if (availability === 'available' && watched === undefined && !this.#stopped) {
      const informers = this.#makeInformers(kind);
      this.#informers.set(kind, informers);
      await Promise.all(informers.map((informer) => informer.start()));
    } else if (availability !== 'available' && watched !== undefined) {
      this.#informers.delete(kind);
      await Promise.all(watched.map((informer) => informer.stop()));
    }
    if (availability === this.#availability.get(kind)) return;
    this.#availability.set(kind, availability);
    this.#options.logger.info({ kind, availability }, 'workload kind availability');
    this.#options.onAvailabilityChanged(kind);
  }

  /** Undefined while the kind has not been probed for yet (then nothing is said of its targets). */
  availability(kind: RestartKind): KindAvailability | undefined {
    return this.#availability.get(kind);
  }

  exists(namespace: string, target: RestartTarget): boolean {
    return this.#informerOf(target.kind, namespace)?.get(namespace, target.name) !== undefined;
  }

  /** Every cached workload of the namespace, with its kind. */
  inNamespace(namespace: string): KindedWorkload[] {
    return RESTART_KINDS.flatMap((kind) =>
      (this.#informerOf(kind, namespace)?.list(namespace) ?? []).map((workload) => ({ kind, workload })),
    );
  }

  #informerOf(kind: RestartKind, namespace: string): ResilientInformer<WorkloadObject> | undefined {
    const informers = this.#informers.get(kind);
    if (informers === undefined) return undefined;
    return informers.length === 1 ? informers[0] : informers[this.#options.namespaces.indexOf(namespace)];
  }
}
