import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { DecisionCache, MetricsAuth } from './metrics-auth.ts';

describe('the /metrics review cache', () => {
  it('answers for ttlMs, then forgets', () => {
    const cache = new DecisionCache(10_000, 4);
    cache.set('a', 200, 1_000);
    expect(cache.get('a', 10_999)).toBe(200);
    expect(cache.get('a', 11_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('never holds more than maxEntries: expired answers go first, then the oldest', () => {
    const cache = new DecisionCache(10_000, 3);
    cache.set('old', 403, 0);
    cache.set('b', 200, 5_000);
    cache.set('c', 401, 6_000);
    // "old" has expired by 10 s: it makes room, the live ones stay.
    cache.set('d', 200, 10_000);
    expect([cache.get('old', 10_000), cache.get('b', 10_000), cache.get('c', 10_000)]).toEqual([
      undefined,
      200,
      401,
    ]);
    // All live: the oldest (b) goes.
    cache.set('e', 403, 10_001);
    expect(cache.size).toBe(3);
    expect(cache.get('b', 10_001)).toBeUndefined();
    expect(cache.get('e', 10_001)).toBe(403);
    for (let i = 0; i < 1_000; i += 1) cache.set(`flood-${i}`, 401, 10_002);
    expect(cache.size).toBe(3);
  });
});

describe('MetricsAuth', () => {
  // A server that is never called: requests without a bearer token are refused before any review.
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:9', skipTLSVerify: false }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const registry = new Registry();
  const auth = new MetricsAuth({ kc, logger: pino({ level: 'silent' }), registry });

  it.each([[undefined], [''], ['Bearer'], ['Bearer '], ['Basic dXNlcjpwYXNz'], ['bearer a b']])(
    'answers 401 to Authorization %j without sending a review',
    async (header) => {
      expect(await auth.authorize(header)).toBe(401);
      expect((await registry.getSingleMetricAsString('keyrotor_metrics_auth_reviews_total')).trim()).toMatch(
        /# TYPE keyrotor_metrics_auth_reviews_total counter$/,
      );
    },
  );

  it('answers 503, never 200, when the API server cannot be reached, and does not cache it', async () => {
    expect(await auth.authorize('Bearer some-token')).toBe(503);
    expect(await auth.authorize('Bearer some-token')).toBe(503);
    const counted = await registry.getSingleMetricAsString('keyrotor_metrics_auth_reviews_total');
    expect(counted).toContain('keyrotor_metrics_auth_reviews_total{kind="tokenreview"} 2');
  });
});
