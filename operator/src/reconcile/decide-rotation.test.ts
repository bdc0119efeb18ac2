import { describe, expect, it } from 'vitest';

import { DATA_API_KEY, DATA_PREVIOUS_API_KEY } from '../api/names.ts';
import type { ApiKey, ApiKeySpec } from '../api/types.ts';
import { keyId } from '../keys/format.ts';
import { keySource } from './key-source.testing.ts';
import { decide, recordFailure, type Plan } from './decide.ts';
import { dueTimes } from './due.ts';
import type { SecretLike } from './secret.ts';
import { resolveSpec, type ResolvedSpec } from './spec.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = new Date('2026-01-01T00:00:00.000Z');

function apiKey(
  spec: Partial<ApiKeySpec> = {},
  annotations: Record<string, string> = {},
  uid = 'uid-1',
): ApiKey {
  return {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name: 'bot', namespace: 'trading', uid, generation: 1, annotations },
    spec: { scopes: ['prices:read'], expiresAfter: '90d', ...spec },
  };
}

/** The cluster as the operator sees it: an ApiKey and its Secret, changed by applying plans. */
class World {
  apiKey: ApiKey;
  secret: SecretLike | undefined;
  readonly keys = keySource();
  readonly plans: Plan[] = [];
  private version = 0;

  constructor(initial: ApiKey) {
    this.apiKey = initial;
  }

  /** One reconcile at `now`; `lose` drops the status write (a crash between the two writes). */
  reconcile(now: Date, { lose = false, jitter = 0 } = {}): Plan {
    const plan = decide({
      apiKey: this.apiKey,
      secret: this.secret,
      now,
      config: { generateKey: this.keys.generateKey, sealKey: this.keys.sealKey, rotationJitterMs: jitter },
    });
    this.plans.push(plan);
    const manifest = plan.secretWrite?.manifest;
    if (manifest) {
      this.version += 1;
      this.secret = {
        ...manifest,
        metadata: { ...manifest.metadata, uid: 'secret', resourceVersion: String(this.version) },
      };
    }
    if (!lose) this.apiKey = { ...this.apiKey, status: plan.status };
    return plan;
  }

  edit(change: (key: ApiKey) => ApiKey): void {
    this.apiKey = change(this.apiKey);
  }

  data(field: string): string | undefined {
    const value = this.secret?.data?.[field];
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  }
}

/** Runs the operator from `start` to `end`, waking exactly when each plan asks; counts rotations by reason. */
function simulate(world: World, start: Date, end: Date): Map<string, number> {
  const reasons = new Map<string, number>();
  let now = start;
  while (now < end) {
    const plan = world.reconcile(now);
    if (plan.replaced) reasons.set(plan.replaced, (reasons.get(plan.replaced) ?? 0) + 1);
    if (plan.requeueAfterMs === undefined) break;
    now = new Date(now.getTime() + plan.requeueAfterMs);
  }
  return reasons;
}

describe('rotation on expiry', () => {
  it('rotates at expiresAt - rotateBefore (default a third of the lifetime), once per key', () => {
    const world = new World(apiKey({ expiresAfter: '30d' }));
    const rotations = simulate(world, T0, new Date(T0.getTime() + 365 * DAY));
    // Every 20 days (30d lifetime, rotated 10d early): 18 rotations in a year.
    expect(rotations.get('Expiry')).toBe(18);
    expect(world.apiKey.status?.rotationCount).toBe(18);
  });

  it('rotates once at once when the operator was away past several due times, and says Expired', () => {
    const world = new World(apiKey({ expiresAfter: '30d' }));
    world.reconcile(T0);
    const plan = world.reconcile(new Date(T0.getTime() + 100 * DAY));
    expect(plan.replaced).toBe('Expiry');
    expect(plan.events.map((event) => event.reason)).toEqual(['Expired', 'Rotated']);
    expect(world.reconcile(new Date(T0.getTime() + 100 * DAY + 1000)).replaced).toBeUndefined();
  });
});

describe('rotation on a schedule', () => {
  it('gives exactly 52 rotations for a year of a weekly schedule', () => {
    const world = new World(apiKey({ expiresAfter: '30d', rotation: { schedule: '0 3 * * 1' } }));
    const start = new Date('2026-01-01T00:00:00Z'); // a Thursday: 52 Mondays follow in 365 days
    const rotations = simulate(world, start, new Date(start.getTime() + 365 * DAY));
    expect(rotations.get('Schedule')).toBe(52);
    expect(rotations.get('Expiry')).toBeUndefined();
  });

  it('rotates once per local day across both DST changes of a non-UTC zone', () => {
    const world = new World(
      apiKey({ expiresAfter: '7d', rotation: { schedule: '30 2 * * *', timeZone: 'Europe/Berlin' } }),
    );
    const start = new Date('2026-03-01T00:00:00Z');
    const days = new Map<string, number>();
    let now = start;
    while (now < new Date('2026-11-30T00:00:00Z')) {
      const plan = world.reconcile(now);
      if (plan.replaced === 'Schedule') {
        const day = now.toLocaleDateString('en-CA', { timeZone: 'Europe/Berlin' });
        days.set(day, (days.get(day) ?? 0) + 1);
      }
      now = new Date(now.getTime() + (plan.requeueAfterMs ?? DAY));
    }
    // 1 March to 29 November 2026 (Berlin): 274 local days; 02:30 does not exist on 29 March.
    expect(days.size).toBe(274);
    expect([...days.values()].every((count) => count === 1)).toBe(true);
    expect(days.get('2026-03-29')).toBe(1);
    expect(days.get('2026-10-25')).toBe(1);
    // 274 simulated days, each checking a year of the schedule ahead: seconds, not milliseconds.
  }, 30_000);

  it('refuses a schedule that does not parse, never runs, or runs too rarely for the lifetime', () => {
    const refuse = (rotation: NonNullable<ApiKeySpec['rotation']>) => {
      const plan = decide({
        apiKey: apiKey({ expiresAfter: '30d', rotation }),
        secret: undefined,
        now: T0,
        config: keySource(),
      });
      return plan.status.conditions?.[0];
    };
    expect(refuse({ schedule: 'every monday' })).toMatchObject({
      reason: 'InvalidSpec',
      message: expect.stringContaining('must have five fields') as string,
    });
    expect(refuse({ schedule: '61 * * * *' })).toMatchObject({
      reason: 'InvalidSpec',
      message: expect.stringContaining('not a valid cron schedule') as string,
    });
    expect(refuse({ schedule: '0 0 31 2 *' })).toMatchObject({
      message: expect.stringContaining('never runs') as string,
    });
    expect(refuse({ schedule: '0 0 1 1 *' })).toMatchObject({
      message: expect.stringContaining('longer than expiresAfter') as string,
    });
    expect(refuse({ schedule: '0 3 * * 1', timeZone: 'Mars/Olympus' })).toMatchObject({
      message: expect.stringContaining('not an IANA time zone') as string,
    });
  });

  it('reads day-of-month and day-of-week with OR, as standard cron does', () => {
    const resolved = resolveSpec(apiKey({ rotation: { schedule: '0 0 1 * 1' } }), T0);
    const spec = (resolved as { ok: true; spec: ResolvedSpec }).spec;
    // After Thursday 1 January 2026: Monday 5 January, not "the 1st when it is a Monday".
    expect(spec.schedule?.nextAfter(new Date('2026-01-01T01:00:00Z'))?.toISOString()).toBe(
      '2026-01-05T00:00:00.000Z',
    );
  });
});

describe('grace periods', () => {
  it('keeps the previous key for the grace period, then retires it on time', () => {
    const world = new World(apiKey({ expiresAfter: '30d', rotation: { gracePeriod: '2d' } }));
    world.reconcile(T0);
    const first = world.keys.issued[0];
    const rotation = world.reconcile(new Date(T0.getTime() + 20 * DAY));
    expect(rotation.replaced).toBe('Expiry');
    expect(world.data(DATA_PREVIOUS_API_KEY)).toBe(first);
    expect(world.apiKey.status?.graceEndsAt).toBe(new Date(T0.getTime() + 22 * DAY).toISOString());
    expect(rotation.requeueAfterMs).toBe(2 * DAY);

    const during = world.reconcile(new Date(T0.getTime() + 22 * DAY - 1));
    expect(during.secretWrite).toBeUndefined();
    const after = world.reconcile(new Date(T0.getTime() + 22 * DAY));
    expect(after.events.map((event) => event.reason)).toEqual(['PreviousKeyRetired']);
    expect(world.data(DATA_PREVIOUS_API_KEY)).toBeUndefined();
    expect(world.apiKey.status?.graceEndsAt).toBeUndefined();
  });
});

describe('on-demand rotation', () => {
  it('rotates exactly once per new annotation value, even when the status write was lost', () => {
    const world = new World(apiKey({}, { 'keyrotor.dev/rotate': 'initial' }));
    expect(world.reconcile(T0).replaced).toBeUndefined(); // a value present at creation asks for nothing
    world.edit((key) => ({
      ...key,
      metadata: { ...key.metadata, annotations: { 'keyrotor.dev/rotate': 'now-please' } },
    }));
    expect(world.reconcile(new Date(T0.getTime() + HOUR), { lose: true }).replaced).toBe('Manual');
    // The status still says nothing about "now-please", but the Secret does: no second rotation.
    expect(world.reconcile(new Date(T0.getTime() + 2 * HOUR)).replaced).toBeUndefined();
    expect(world.apiKey.status?.lastRotateRequest).toBe('now-please');
    expect(world.keys.issued).toHaveLength(2);
  });
});

describe('exactly once across a crash between the Secret write and the status write', () => {
  it('does not rotate again, and the status catches up with history and count', () => {
    const world = new World(apiKey({ expiresAfter: '30d' }));
    world.reconcile(T0);
    const firstId = world.apiKey.status?.keyId;
    world.reconcile(new Date(T0.getTime() + 20 * DAY), { lose: true });
    expect(world.apiKey.status?.keyId).toBe(firstId); // the crash: the status never heard of it
    const after = world.reconcile(new Date(T0.getTime() + 20 * DAY + MINUTE));
    expect(after.replaced).toBeUndefined();
    expect(world.keys.issued).toHaveLength(2);
    expect(world.apiKey.status).toMatchObject({ keyId: keyId(world.keys.issued[1] ?? ''), rotationCount: 1 });
    expect(world.apiKey.status?.history?.[0]).toMatchObject({ keyId: firstId, reason: 'Expiry' });
  });
});

function withoutReason(spec: ApiKeySpec): ApiKeySpec {
  const { revocationReason: _dropped, ...rest } = spec;
  return rest;
}

describe('revocation', () => {
  it('removes the current and the previous key at once, and never brings the revoked key back', () => {
    const world = new World(apiKey({ expiresAfter: '30d', rotation: { gracePeriod: '5d' } }));
    world.reconcile(T0);
    world.reconcile(new Date(T0.getTime() + 20 * DAY)); // in the grace period now
    const revokedId = world.apiKey.status?.keyId;
    world.edit((key) => ({
      ...key,
      metadata: { ...key.metadata, generation: 2 },
      spec: { ...key.spec, revoked: true, revocationReason: 'leaked in a log' },
    }));
    const plan = world.reconcile(new Date(T0.getTime() + 21 * DAY));
    expect(world.data(DATA_API_KEY)).toBeUndefined();
    expect(world.data(DATA_PREVIOUS_API_KEY)).toBeUndefined();
    expect(plan.status.conditions?.[0]).toMatchObject({ status: 'False', reason: 'Revoked' });
    expect(plan.events).toEqual([
      expect.objectContaining({
        type: 'Warning',
        reason: 'Revoked',
        note: expect.stringContaining('leaked in a log') as string,
      }),
    ]);
    expect(plan.audit[0]).toMatchObject({ action: 'revoked', keyId: revokedId });
    expect(plan.status.history?.[0]).toMatchObject({ keyId: revokedId, reason: 'Revoked' });
    expect(plan.requeueAfterMs).toBeUndefined();
    // Steady while revoked.
    expect(world.reconcile(new Date(T0.getTime() + 22 * DAY)).secretWrite).toBeUndefined();

    world.edit((key) => ({
      ...key,
      metadata: { ...key.metadata, generation: 3 },
      spec: withoutReason({ ...key.spec, revoked: false }),
    }));
    const reinstated = world.reconcile(new Date(T0.getTime() + 23 * DAY));
    expect(reinstated.status.conditions?.[0]?.status).toBe('True');
    expect(reinstated.status.keyId).not.toBe(revokedId);
    expect(world.keys.issued).toHaveLength(3);
    expect(world.data(DATA_API_KEY)).toBe(world.keys.issued[2]);
  });
});

describe('history', () => {
  it('keeps the last 10 retired keys, newest first, with why they went', () => {
    const world = new World(apiKey({ expiresAfter: '3d' }));
    simulate(world, T0, new Date(T0.getTime() + 40 * DAY));
    const history = world.apiKey.status?.history ?? [];
    expect(history).toHaveLength(10);
    expect(history.every((entry) => entry.reason === 'Expiry')).toBe(true);
    expect(new Date(history[0]?.retiredAt ?? 0) > new Date(history[9]?.retiredAt ?? 0)).toBe(true);
    expect(JSON.stringify(history)).not.toContain(world.keys.issued[0]);
  });
});

describe('failing rotations', () => {
  it('count attempts and warn ExpiringSoon once little of the lifetime is left', () => {
    const world = new World(apiKey({ expiresAfter: '10d' }));
    world.reconcile(T0);
    const rotation = decide({
      apiKey: world.apiKey,
      secret: world.secret,
      now: new Date(T0.getTime() + 7 * DAY),
      config: keySource(),
    });
    const early = recordFailure(world.apiKey, rotation, new Date(T0.getTime() + 7 * DAY), 'etcd timeout');
    expect(early.status.failedAttempts).toBe(1);
    expect(early.events.map((event) => event.reason)).toEqual(['RotationFailed']);
    const late = recordFailure(
      { ...world.apiKey, status: early.status },
      rotation,
      new Date(T0.getTime() + 9.5 * DAY),
      'etcd timeout',
    );
    expect(late.status.failedAttempts).toBe(2);
    expect(late.status.conditions?.find((condition) => condition.type === 'ExpiringSoon')).toMatchObject({
      status: 'True',
    });
    expect(late.events.map((event) => event.reason)).toEqual(['RotationFailed', 'ExpiringSoon']);
    // Once it goes through, the warning and the count are gone.
    const done = decide({
      apiKey: { ...world.apiKey, status: late.status },
      secret: world.secret,
      now: new Date(T0.getTime() + 9.6 * DAY),
      config: keySource(),
    });
    expect(done.status.failedAttempts).toBeUndefined();
    expect(done.status.conditions?.map((condition) => condition.type)).toEqual(['Ready']);
  });
});

describe('storms', () => {
  it('spreads keys due at one instant over the jitter window, the same way on every run', () => {
    const spec = (
      resolveSpec(apiKey({ rotation: { schedule: '0 0 * * *' } }), T0) as { ok: true; spec: ResolvedSpec }
    ).spec;
    const key = { issuedAt: T0, expiresAt: new Date(T0.getTime() + 90 * DAY) };
    const due = Array.from({ length: 1000 }, (_, i) =>
      dueTimes(spec, key, `uid-${i}`, 10 * MINUTE).nextRotationAt.getTime(),
    );
    const tick = new Date('2026-01-02T00:00:00Z').getTime();
    expect(Math.min(...due)).toBeGreaterThanOrEqual(tick);
    expect(Math.max(...due)).toBeLessThan(tick + 10 * MINUTE);
    // Spread: no minute of the window holds more than a fifth of the keys.
    const perMinute = new Map<number, number>();
    for (const time of due)
      perMinute.set(
        Math.floor((time - tick) / MINUTE),
        (perMinute.get(Math.floor((time - tick) / MINUTE)) ?? 0) + 1,
      );
    expect(Math.max(...perMinute.values())).toBeLessThan(200);
    expect(dueTimes(spec, key, 'uid-7', 10 * MINUTE)).toEqual(dueTimes(spec, key, 'uid-7', 10 * MINUTE));
  });
});

describe('restarts of env-var consumers', () => {
  it('are asked for when a key is replaced, not when it is first issued', () => {
    const world = new World(
      apiKey({ expiresAfter: '30d', rolloutRestartTargets: [{ kind: 'Deployment', name: 'bot' }] }),
    );
    expect(world.reconcile(T0).restart).toEqual([]);
    expect(world.reconcile(new Date(T0.getTime() + DAY)).restart).toEqual([]);
    expect(world.reconcile(new Date(T0.getTime() + 20 * DAY)).restart).toEqual([
      { kind: 'Deployment', name: 'bot' },
    ]);
  });
});
