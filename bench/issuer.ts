// npm run bench:issuer -- [--keys N] [--rounds N] [--results file]
// The operator's cost of rebuilding one issuer's verifier document (planVerifier: every consumer's spec
// read and admitted, both keys hashed, the document compared with the one stored), against the bare
// SHA-256 of the same keys, in one run. No control plane: the pure function, as the controller calls it.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';

import type { ApiKey, ApiKeyIssuer } from '../operator/src/api/types.ts';
import { planVerifier, type Consumer } from '../operator/src/issuer/verifier-plan.ts';
import { decide } from '../operator/src/reconcile/decide.ts';
import { keySource } from '../operator/src/reconcile/key-source.testing.ts';
import type { SecretLike } from '../operator/src/reconcile/secret.ts';
import { appendResults, percentile, repoRoot } from './harness.ts';

const { values } = parseArgs({
  options: {
    // 1,500 keys in their grace periods are 3,000 entries: about as many as a Secret's 1 MiB holds.
    keys: { type: 'string', default: '1500' },
    rounds: { type: 'string', default: '20' },
    results: { type: 'string', default: path.join(repoRoot, 'bench/RESULTS.md') },
  },
});
const count = Number(values.keys);
const rounds = Number(values.rounds);
if (!Number.isInteger(count) || count < 1) throw new Error('--keys must be a positive whole number');
if (!Number.isInteger(rounds) || rounds < 3) throw new Error('--rounds must be at least 3');

const now = new Date('2026-11-28T00:00:00Z');
const issuer: ApiKeyIssuer = {
  apiVersion: 'keyrotor.dev/v1alpha1',
  kind: 'ApiKeyIssuer',
  metadata: { name: 'prices', namespace: 'market-data', uid: 'issuer', generation: 1 },
  spec: { scopes: ['prices:*'], namespaceSelector: {} },
};
const keys = keySource();
// Keys as a storm leaves them: each with a schedule, a current key and a previous one in its grace period.
const consumers: Consumer[] = Array.from({ length: count }, (_, index) => {
  const apiKey: ApiKey = {
    apiVersion: 'keyrotor.dev/v1alpha1',
    kind: 'ApiKey',
    metadata: { name: `client-${index}`, namespace: 'clients', uid: `key-${index}`, generation: 1 },
    spec: {
      scopes: ['prices:read'],
      expiresAfter: '2d',
      rotation: { schedule: '0 3 * * *', gracePeriod: '1h' },
      issuerRef: { namespace: 'market-data', name: 'prices' },
    },
  };
  const context = { issuer: { issuer, namespaceLabels: {} } };
  const first = decide({ apiKey, secret: undefined, now, config: keys, ...context });
  const issued = {
    ...apiKey,
    status: first.status,
    metadata: { ...apiKey.metadata, annotations: { 'keyrotor.dev/rotate': 'now' } },
  };
  const rotated = decide({
    apiKey: issued,
    secret: stored(first.secretWrite?.manifest),
    now,
    config: keys,
    ...context,
  });
  return { apiKey: { ...issued, status: rotated.status }, secret: stored(rotated.secretWrite?.manifest) };
});

function stored(manifest: SecretLike | undefined): SecretLike | undefined {
  return manifest && { ...manifest, metadata: { ...manifest.metadata, uid: 'secret', resourceVersion: '1' } };
}

const rebuild = (verifierSecret: SecretLike | undefined) =>
  planVerifier({
    issuer,
    consumers,
    namespaceLabels: () => ({}),
    verifierSecret,
    now,
    sealKey: keys.sealKey,
  });
const first = rebuild(undefined);
const listed = first.status.activeKeys ?? 0;
if (listed !== 2 * count || first.write === undefined)
  throw new Error(
    `expected a document of ${2 * count} entries; got ${listed}, ${first.status.conditions?.[0]?.reason}`,
  );
const verifierSecret = stored(first.write);
const presented = consumers.flatMap(({ secret }) =>
  ['api-key', 'previous-api-key'].map((field) =>
    Buffer.from(secret?.data?.[field] ?? '', 'base64').toString(),
  ),
);

const rebuildMs: number[] = [];
const hashMs: number[] = [];
for (let round = 0; round < rounds; round += 1) {
  let start = performance.now();
  const plan = rebuild(verifierSecret);
  rebuildMs.push(performance.now() - start);
  if (plan.write !== undefined) throw new Error('an unchanged document was written again');
  start = performance.now();
  for (const key of presented) createHash('sha256').update(key).digest('hex');
  hashMs.push(performance.now() - start);
}
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const result = {
  consumers: count,
  entries: listed,
  documentBytes: Buffer.from(verifierSecret?.data?.['verifier.json'] ?? '', 'base64').length,
  rounds,
  rebuildMs: { mean: Number(mean(rebuildMs).toFixed(2)), p50: Number(percentile(rebuildMs, 50).toFixed(2)) },
  sha256OfEveryKeyMs: { mean: Number(mean(hashMs).toFixed(2)) },
  rebuildOverHashing: Number((mean(rebuildMs) / mean(hashMs)).toFixed(1)),
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
await appendResults(values.results, 'issuer rebuild', { issuerRebuild: result });
