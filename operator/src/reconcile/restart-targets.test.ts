import { describe, expect, it } from 'vitest';

import { ANNOTATION_RELOAD } from '../api/names.ts';
import { MAX_CONDITION_MESSAGE, setCondition } from './conditions.ts';
import { Reason } from './reasons.ts';
import {
  RESTART_TARGETS_READY,
  missingTargets,
  reloadTargetsUsing,
  restartTargetsCondition,
  sameCondition,
  workloadView,
  type KindAvailability,
  type KindedWorkload,
  type WorkloadLike,
  type WorkloadView,
} from './restart-targets.ts';
import type { RestartKind, RestartTarget } from './spec.ts';

const deployment = (
  name: string,
  annotations: Record<string, string> | undefined,
  spec: NonNullable<NonNullable<NonNullable<WorkloadLike['spec']>['template']>['spec']>,
): WorkloadLike & WorkloadView => ({
  metadata: {
    name,
    namespace: 'team',
    uid: `uid-${name}`,
    resourceVersion: '7',
    ...(annotations ? { annotations } : {}),
  },
  spec: { template: { spec } },
});

describe('workloadView', () => {
  const spec = {
    volumes: [
      { secret: { secretName: 'vol' } },
      { projected: { sources: [{ secret: { name: 'proj' } }, {}] } },
    ],
    containers: [
      {
        env: [
          { valueFrom: { secretKeyRef: { name: 'env' } } },
          { valueFrom: { secretKeyRef: { name: 'vol' } } },
        ],
        envFrom: [{ secretRef: { name: 'from' } }],
      },
    ],
    initContainers: [{ envFrom: [{ secretRef: { name: 'init' } }] }],
  };

  it.each<[string, Record<string, string> | undefined, object]>([
    [
      'keeps the Secrets a reload-annotated pod template uses (volume, projected, env, envFrom), sorted, once each',
      { [ANNOTATION_RELOAD]: 'true', 'team/owner': 'x' },
      {
        metadata: {
          name: 'web',
          namespace: 'team',
          uid: 'uid-web',
          resourceVersion: '7',
          annotations: { [ANNOTATION_RELOAD]: 'true' },
        },
        secretNames: ['env', 'from', 'init', 'proj', 'vol'],
      },
    ],
    [
      'keeps only names when the workload does not ask for reloads',
      { 'team/owner': 'x' },
      { metadata: { name: 'web', namespace: 'team', uid: 'uid-web', resourceVersion: '7' } },
    ],
    [
      'reads only "true" as asking ("false", "yes" do not)',
      { [ANNOTATION_RELOAD]: 'yes' },
      { metadata: { name: 'web', namespace: 'team', uid: 'uid-web', resourceVersion: '7' } },
    ],
  ])('%s', (_name, annotations, view) => {
    expect(workloadView(deployment('web', annotations, spec))).toEqual(view);
  });

  it('never throws on a partial object (the watch would drop the event)', () => {
    expect(workloadView({})).toEqual({ metadata: {} });
    expect(workloadView({ metadata: { annotations: { [ANNOTATION_RELOAD]: 'true' } } })).toEqual({
      metadata: { annotations: { [ANNOTATION_RELOAD]: 'true' } },
      secretNames: [],
    });
  });

  it('keeps a few hundred bytes of a workload whatever its pod template holds', () => {
    const big = deployment(
      'big',
      { [ANNOTATION_RELOAD]: 'true' },
      {
        containers: [
          { env: Array.from({ length: 2_000 }, () => ({ valueFrom: { secretKeyRef: { name: 'one' } } })) },
        ],
      },
    );
    expect(JSON.stringify(workloadView(big)).length).toBeLessThan(200);
  });
});

describe('missingTargets and restartTargetsCondition', () => {
  const present = new Set(['Deployment/web', 'StatefulSet/db', 'Rollout/canary']);
  const cases: {
    name: string;
    targets: RestartTarget[];
    availability?: Partial<Record<RestartKind, KindAvailability>>;
    status: 'True' | 'False';
    reason: string;
    message: RegExp;
  }[] = [
    {
      name: 'True when every target exists',
      targets: [
        { kind: 'Deployment', name: 'web' },
        { kind: 'StatefulSet', name: 'db' },
      ],
      status: 'True',
      reason: Reason.RestartTargetsFound,
      message: /^all 2 rolloutRestartTargets exist/,
    },
    {
      name: 'False naming each missing target, in spec order',
      targets: [
        { kind: 'DaemonSet', name: 'agent' },
        { kind: 'Deployment', name: 'web' },
        { kind: 'Deployment', name: 'gone' },
      ],
      status: 'False',
      reason: Reason.RestartTargetMissing,
      message: /^rolloutRestartTargets names DaemonSet agent, Deployment gone, not found/,
    },
    {
      name: 'a Rollout without the Argo Rollouts CRD is missing, and says why',
      targets: [{ kind: 'Rollout', name: 'canary' }],
      availability: { Rollout: 'not-installed' },
      status: 'False',
      reason: Reason.RestartTargetMissing,
      message: /Rollout canary \(the CRD rollouts\.argoproj\.io is not installed/,
    },
    {
      name: 'a kind keyrotor may not list is missing, and names the switch',
      targets: [{ kind: 'Deployment', name: 'web' }],
      availability: { Deployment: 'forbidden' },
      status: 'False',
      reason: Reason.RestartTargetMissing,
      message: /may not list deployments\.apps: the chart grants it with features\.workloadRestarts=true/,
    },
    {
      name: 'names ten and counts the rest',
      targets: Array.from({ length: 13 }, (_, index) => ({ kind: 'Deployment' as const, name: `w${index}` })),
      status: 'False',
      reason: Reason.RestartTargetMissing,
      message: /w9 and 3 more, not found/,
    },
  ];

  it.each(cases)('$name', ({ targets, availability = {}, status, reason, message }) => {
    const missing = missingTargets(
      targets,
      (kind) => availability[kind] ?? 'available',
      (target) => present.has(`${target.kind}/${target.name}`),
    );
    const condition = restartTargetsCondition(targets, missing);
    expect(condition).toMatchObject({ type: RESTART_TARGETS_READY, status, reason });
    expect(condition.message).toMatch(message);
  });

  it('a message too long for a condition is cut as written, so the written one compares equal (no rewrite each resync)', () => {
    const targets = Array.from({ length: 12 }, (_, index) => ({
      kind: 'Rollout' as const,
      name: `${'r'.repeat(240)}${index}`,
    }));
    const missing = missingTargets(
      targets,
      () => 'not-installed',
      () => false,
    );
    const update = restartTargetsCondition(targets, missing);
    expect(update.message.length).toBeLessThanOrEqual(MAX_CONDITION_MESSAGE);
    const [written] = setCondition([], update, new Date(0), 1);
    expect(sameCondition(written, update)).toBe(true);
  });
});

describe('reloadTargetsUsing', () => {
  const view = (kind: RestartKind, name: string, reload: boolean, secrets: string[]): KindedWorkload => ({
    kind,
    workload: workloadView(
      deployment(name, reload ? { [ANNOTATION_RELOAD]: 'true' } : undefined, {
        containers: [{ envFrom: secrets.map((secret) => ({ secretRef: { name: secret } })) }],
      }),
    ),
  });
  const workloads = [
    view('StatefulSet', 'db', true, ['key']),
    view('Deployment', 'web', true, ['other', 'key']),
    view('Deployment', 'plain', false, ['key']),
    view('Rollout', 'canary', true, ['key']),
    view('DaemonSet', 'agent', true, ['unrelated']),
  ];

  it.each<[string, string, RestartTarget[]]>([
    [
      'the reload-annotated workloads that use the Secret, sorted by kind and name',
      'key',
      [
        { kind: 'Deployment', name: 'web' },
        { kind: 'Rollout', name: 'canary' },
        { kind: 'StatefulSet', name: 'db' },
      ],
    ],
    ['none for a Secret no annotated workload uses', 'nobody', []],
    ['an annotation on a workload that uses no key Secret restarts nothing', 'unrelated-key', []],
  ])('%s', (_name, secretName, expected) => {
    expect(reloadTargetsUsing(workloads, secretName)).toEqual(expected);
  });
});
